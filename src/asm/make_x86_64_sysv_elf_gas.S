// SPDX-License-Identifier: MIT
/*
 * weft__context_make for x86_64, System V ABI, ELF, GNU as.
 *
 *   weft__context weft__context_make(void *stack_top, size_t size,
 *                                    void (*entry)(weft__transfer));
 *
 * Writes a frame that weft__context_jump can restore, below stack_top
 * rounded down to 16 bytes, and returns a pointer to it.  Nothing below that
 * frame is touched, so only the top page of a fresh stack becomes resident.
 *
 *   offset  0x00      0x04      0x08 .. 0x20     0x28     0x30   0x38       0x40..0x50
 *         +---------+---------+---------------+--------+------+----------+-----------+
 *         |  MXCSR  | x87 CW  | r12-r15 (any) | entry  |  0   | resume   | (unused)  |
 *         +---------+---------+---------------+--------+------+----------+-----------+
 *                                               = rbx    = rbp  = rip
 *
 * The frame sits 0x50 below the aligned top, so when the first jump pops it
 * the stack pointer is 16-byte aligned at `start`, and `call *%rbx` enters
 * the entry function with the alignment the ABI promises (rsp + 8 aligned).
 * The control words are copied from the caller: a new context starts with
 * the floating-point environment of the thread that made it.  `resume` is a
 * point one byte inside weft__context_start (see there).
 */

#include "gnu_property.h"

        .text
        .globl  weft__context_make
        .hidden weft__context_make
        .type   weft__context_make, @function
        .p2align 4
weft__context_make:
        .cfi_startproc
        endbr64
        movq    %rdi, %rax
        andq    $-16, %rax
        leaq    -0x50(%rax), %rax

        stmxcsr (%rax)
        fnstcw  0x4(%rax)
        movq    %rdx, 0x28(%rax)
        movq    $0, 0x30(%rax)
        leaq    .Lresume(%rip), %rcx
        movq    %rcx, 0x38(%rax)
        ret
        .cfi_endproc
        .size   weft__context_make, .-weft__context_make

/*
 * The first code a new context runs.  rdi:rsi hold the transfer, rbx the
 * entry.  Marking rip undefined ends every backtrace here: gdb and perf see
 * this as the outermost frame of the fiber, below its entry function.
 *
 * A fresh frame's return address is .Lresume, not the function's first
 * byte: a debugger stopped inside the first jump into the context looks up
 * the caller's unwind rule at return address - 1, which must fall inside
 * this function (at its first byte it would fall before it, and the frame
 * would show as "??").  Hence the nop.
 */
        .p2align 4
        .type   weft__context_start, @function
weft__context_start:
        .cfi_startproc
        .cfi_undefined %rip
        nop
.Lresume:
        endbr64
        xorl    %ebp, %ebp
        call    *%rbx
        /* An entry function must never return: there is nothing to return
           to.  Say so and abort. */
        call    weft__context_entry_returned
        hlt
        .cfi_endproc
        .size   weft__context_start, .-weft__context_start

        .section .note.GNU-stack, "", %progbits
        weft_gnu_property 0xc0000002, 1         /* x86 feature: IBT */
