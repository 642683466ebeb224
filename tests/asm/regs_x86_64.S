// SPDX-License-Identifier: MIT
/*
 * Test helper: weft_test_jump_regs(to, data, in, out) sets every
 * callee-saved register and the FP control words to in[], calls
 * weft__context_jump(to, data), and when that returns stores what those
 * registers then hold into out[].  Its own caller's registers are preserved.
 *
 *   in/out: [0] rbx [1] rbp [2] r12 [3] r13 [4] r14 [5] r15 [6] MXCSR [7] x87 CW
 */
        .text
        .globl  weft_test_jump_regs
        .type   weft_test_jump_regs, @function
        .p2align 4
weft_test_jump_regs:
        .cfi_startproc
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        subq    $24, %rsp
        .cfi_adjust_cfa_offset 24
        movq    %rcx, (%rsp)
        stmxcsr 8(%rsp)
        fnstcw  12(%rsp)

        movq    0(%rdx), %rbx
        movq    8(%rdx), %rbp
        movq    16(%rdx), %r12
        movq    24(%rdx), %r13
        movq    32(%rdx), %r14
        movq    40(%rdx), %r15
        ldmxcsr 48(%rdx)
        fldcw   56(%rdx)

        call    weft__context_jump

        movq    (%rsp), %rcx
        movq    %rbx, 0(%rcx)
        movq    %rbp, 8(%rcx)
        movq    %r12, 16(%rcx)
        movq    %r13, 24(%rcx)
        movq    %r14, 32(%rcx)
        movq    %r15, 40(%rcx)
        movq    $0, 48(%rcx)
        stmxcsr 48(%rcx)
        movq    $0, 56(%rcx)
        fnstcw  56(%rcx)

        ldmxcsr 8(%rsp)
        fldcw   12(%rsp)
        addq    $24, %rsp
        .cfi_adjust_cfa_offset -24
        popq    %r15
        .cfi_adjust_cfa_offset -8
        popq    %r14
        .cfi_adjust_cfa_offset -8
        popq    %r13
        .cfi_adjust_cfa_offset -8
        popq    %r12
        .cfi_adjust_cfa_offset -8
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        ret
        .cfi_endproc
        .size   weft_test_jump_regs, .-weft_test_jump_regs

        .section .note.GNU-stack, "", %progbits
