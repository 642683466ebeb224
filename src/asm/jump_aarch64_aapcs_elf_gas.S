// SPDX-License-Identifier: MIT
/*
 * weft__context_jump for aarch64, AAPCS64, ELF, GNU as.
 *
 *   weft__transfer weft__context_jump(weft__context to, void *data);
 *
 * Saves the caller's callee-saved state on its own stack, makes `to` the
 * stack, restores the state found there and returns in that context with
 * {from, data} in x0:x1 (which is also how a fresh context's entry receives
 * its weft__transfer argument).
 *
 * The saved frame, at the context pointer (the suspended stack pointer):
 *
 *   offset  0x00 .. 0x38   0x40 .. 0x88   0x90   0x98   0xa0   0xa8
 *         +--------------+--------------+------+------+------+------+
 *         |   d8 - d15   |  x19 - x28   | x29  | x30  |  pc  | FPCR |
 *         +--------------+--------------+------+------+------+------+
 *
 * d8-d15 are the low halves of v8-v15, the only callee-saved FP registers
 * in AAPCS64.  FPCR holds the floating-point control state (rounding mode,
 * flush to zero, default NaN, trap enables), saved so that a context's
 * rounding mode stays its own, as MXCSR's and the x87 control word's do on
 * x86_64; FPSR, the cumulative exception flags, is status and not saved.
 * pc is where the context resumes: the caller's x30.  The frame is 0xb0
 * bytes, keeping sp 16-byte aligned as the architecture requires.
 *
 * Control-flow protection: the entry points start with a BTI landing pad,
 * and the object is marked BTI- and PAC-compatible (it returns with ret and
 * signs nothing; the resumed side's return address is the one its bl
 * produced).
 *
 * Every suspended frame has this layout, so the CFI rules below hold on
 * both sides of the stack switch.
 */

#include "gnu_property.h"

        .text
        .globl  weft__context_jump
        .hidden weft__context_jump
        .type   weft__context_jump, %function
        .p2align 4
weft__context_jump:
        .cfi_startproc
        bti     c
        sub     sp, sp, #0xb0
        .cfi_def_cfa_offset 0xb0

        stp     d8,  d9,  [sp, #0x00]
        stp     d10, d11, [sp, #0x10]
        stp     d12, d13, [sp, #0x20]
        stp     d14, d15, [sp, #0x30]
        stp     x19, x20, [sp, #0x40]
        stp     x21, x22, [sp, #0x50]
        stp     x23, x24, [sp, #0x60]
        stp     x25, x26, [sp, #0x70]
        stp     x27, x28, [sp, #0x80]
        stp     x29, x30, [sp, #0x90]
        .cfi_rel_offset x19, 0x40
        .cfi_rel_offset x20, 0x48
        .cfi_rel_offset x21, 0x50
        .cfi_rel_offset x22, 0x58
        .cfi_rel_offset x23, 0x60
        .cfi_rel_offset x24, 0x68
        .cfi_rel_offset x25, 0x70
        .cfi_rel_offset x26, 0x78
        .cfi_rel_offset x27, 0x80
        .cfi_rel_offset x28, 0x88
        .cfi_rel_offset x29, 0x90
        .cfi_rel_offset x30, 0x98
        .cfi_rel_offset d8,  0x00
        .cfi_rel_offset d9,  0x08
        .cfi_rel_offset d10, 0x10
        .cfi_rel_offset d11, 0x18
        .cfi_rel_offset d12, 0x20
        .cfi_rel_offset d13, 0x28
        .cfi_rel_offset d14, 0x30
        .cfi_rel_offset d15, 0x38
        str     x30, [sp, #0xa0]
        mrs     x11, fpcr
        str     x11, [sp, #0xa8]
        /* The return address is the pc slot, not the x30 one: the two are
           equal in a frame saved here, but in a frame made by
           weft__context_make x30 is 0 and pc is weft__context_start, so
           only this rule unwinds correctly once the stack is switched. */
        .cfi_rel_offset x30, 0xa0

        /* The switch.  From here on we run in `to`. */
        mov     x9, sp
        mov     sp, x0

        ldp     d8,  d9,  [sp, #0x00]
        ldp     d10, d11, [sp, #0x10]
        ldp     d12, d13, [sp, #0x20]
        ldp     d14, d15, [sp, #0x30]
        ldp     x19, x20, [sp, #0x40]
        ldp     x21, x22, [sp, #0x50]
        ldp     x23, x24, [sp, #0x60]
        ldp     x25, x26, [sp, #0x70]
        ldp     x27, x28, [sp, #0x80]
        ldp     x29, x30, [sp, #0x90]
        ldr     x10, [sp, #0xa0]
        /* Writing FPCR can cost more than the rest of the switch, and it
           almost never differs between contexts: write it only when it
           does (x11 still holds the current value). */
        ldr     x12, [sp, #0xa8]
        cmp     x11, x12
        b.eq    1f
        msr     fpcr, x12
1:      add     sp, sp, #0xb0
        .cfi_def_cfa_offset 0
        /* The registers hold the resumed side's values now, and the frame
           lies below sp, free for a signal handler to overwrite. */
        .cfi_restore x19
        .cfi_restore x20
        .cfi_restore x21
        .cfi_restore x22
        .cfi_restore x23
        .cfi_restore x24
        .cfi_restore x25
        .cfi_restore x26
        .cfi_restore x27
        .cfi_restore x28
        .cfi_restore x29
        .cfi_restore d8
        .cfi_restore d9
        .cfi_restore d10
        .cfi_restore d11
        .cfi_restore d12
        .cfi_restore d13
        .cfi_restore d14
        .cfi_restore d15
        .cfi_register x30, x10

        /* Result {from, data}: x0 = the context we left, x1 = data. */
        mov     x0, x9
        ret     x10
        .cfi_endproc
        .size   weft__context_jump, .-weft__context_jump

        .section .note.GNU-stack, "", %progbits
        weft_gnu_property 0xc0000000, 3         /* AArch64 feature: BTI, PAC */
