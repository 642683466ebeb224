// SPDX-License-Identifier: MIT
/*
 * weft__context_make for aarch64, AAPCS64, ELF, GNU as.
 *
 *   weft__context weft__context_make(void *stack_top, size_t size,
 *                                    void (*entry)(weft__transfer));
 *
 * Writes a frame that weft__context_jump can restore, below stack_top
 * rounded down to 16 bytes, and returns a pointer to it.  Nothing below the
 * frame is touched.
 *
 *   offset  0x00 .. 0x38   0x40    0x48 .. 0x88   0x90   0x98   0xa0     0xa8
 *         +--------------+-------+--------------+------+------+--------+------+
 *         | d8-d15 (any) | entry | x20-x28(any) |  0   |  0   | resume | FPCR |
 *         +--------------+-------+--------------+------+------+--------+------+
 *                          = x19                  = x29  = x30   = pc
 *
 * After the first jump sp is the aligned top itself (16-byte aligned, as
 * AAPCS64 requires at every public interface), and `start` calls the entry
 * held in x19 with the transfer already in x0:x1.  FPCR is copied from the
 * caller: a new context starts with the floating-point control state of the
 * thread that made it.  `resume` is a point one instruction inside
 * weft__context_start (see there).
 */

#include "gnu_property.h"

        .text
        .globl  weft__context_make
        .hidden weft__context_make
        .type   weft__context_make, %function
        .p2align 4
weft__context_make:
        .cfi_startproc
        bti     c
        and     x0, x0, #~0xf
        sub     x0, x0, #0xb0
        str     x2, [x0, #0x40]
        stp     xzr, xzr, [x0, #0x90]
        adr     x3, .Lresume
        mrs     x4, fpcr
        stp     x3, x4, [x0, #0xa0]
        ret
        .cfi_endproc
        .size   weft__context_make, .-weft__context_make

/*
 * The first code a new context runs.  Marking x30 (the return address)
 * undefined ends every backtrace here, below the fiber's entry function.
 *
 * A fresh frame's return address is .Lresume, not the function's first
 * instruction: a debugger stopped inside the first jump into the context
 * looks up the caller's unwind rule just before the return address, which
 * must fall inside this function.  Hence the nop.
 */
        .p2align 4
        .type   weft__context_start, %function
weft__context_start:
        .cfi_startproc
        .cfi_undefined x30
        nop
.Lresume:
        mov     x29, #0
        mov     x30, #0
        blr     x19
        /* An entry function must never return: say so and abort. */
        bl      weft__context_entry_returned
        brk     #0
        .cfi_endproc
        .size   weft__context_start, .-weft__context_start

        .section .note.GNU-stack, "", %progbits
        weft_gnu_property 0xc0000000, 3         /* AArch64 feature: BTI, PAC */
