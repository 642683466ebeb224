// SPDX-License-Identifier: MIT
/*
 * weft__context_jump and weft__context_jump_ret for x86_64, System V ABI,
 * ELF, GNU as.  The two differ only in their last instruction (below).
 *
 *   weft__transfer weft__context_jump(weft__context to, void *data);
 *   weft__transfer weft__context_jump_ret(weft__context to, void *data);
 *
 * Saves the caller's callee-saved state on its own stack, makes `to` the
 * stack, restores the state found there and returns in that context with
 * {from, data} in rax:rdx (or, for a context made by weft__context_make
 * that has never run, passes {from, data} in rdi:rsi to its entry).
 *
 * The saved frame, at the context pointer (the suspended stack pointer):
 *
 *   offset  0x00      0x04      0x08   0x10   0x18   0x20   0x28   0x30   0x38
 *         +---------+---------+------+------+------+------+------+------+------+
 *         |  MXCSR  | x87 CW  | r12  | r13  | r14  | r15  | rbx  | rbp  | rip  |
 *         +---------+---------+------+------+------+------+------+------+------+
 *
 * rip is the caller's return address: the call instruction pushed it, so the
 * frame costs 0x38 bytes of new stack.  MXCSR's control bits (rounding, flush
 * to zero, denormals are zero, exception masks) and the x87 control word are
 * the floating-point control state the ABI makes callee-saved.  MXCSR's six
 * status bits, the sticky exception flags, are caller-saved: they are saved
 * with the rest of the word but never restored; they stay with the thread.
 *
 * Control-flow protection (CET): the entry points start with endbr64, and
 * the object is marked IBT-compatible.  It is not marked shadow-stack
 * compatible: the switch moves the stack but not the shadow stack
 * (docs/context.md).
 *
 * Every suspended frame has this same layout, so one set of CFI rules is
 * true both before and after the stack pointer moves: a debugger stopped
 * anywhere in here unwinds correctly into whichever context owns the stack.
 */

#include "gnu_property.h"

        /* The body of both entry points; \leave says how it ends. */
        .macro  weft_jump name, leave
        .globl  \name
        .hidden \name
        .type   \name, @function
        .p2align 4
\name:
        .cfi_startproc
        endbr64
        leaq    -0x38(%rsp), %rsp
        .cfi_adjust_cfa_offset 0x38

        stmxcsr (%rsp)
        fnstcw  0x4(%rsp)
        movq    %r12, 0x08(%rsp)
        .cfi_rel_offset %r12, 0x08
        movq    %r13, 0x10(%rsp)
        .cfi_rel_offset %r13, 0x10
        movq    %r14, 0x18(%rsp)
        .cfi_rel_offset %r14, 0x18
        movq    %r15, 0x20(%rsp)
        .cfi_rel_offset %r15, 0x20
        movq    %rbx, 0x28(%rsp)
        .cfi_rel_offset %rbx, 0x28
        movq    %rbp, 0x30(%rsp)
        .cfi_rel_offset %rbp, 0x30

        /* The switch.  From here on we run in `to`, whose frame has the
           same layout, so the CFI above still holds. */
        movq    %rsp, %rax
        movq    %rdi, %rsp

        /* Loading MXCSR and the x87 control word can cost more than the
           rest of the switch; their control bits almost never differ
           between contexts, so load each only when they do (the frame we
           just saved, at rax, holds the current values).  MXCSR's status
           flags (bits 0-5) are left out of the comparison: any inexact
           result sets one, and they would differ after the first division
           on either side.  When MXCSR is loaded, it gets the resumed
           side's control bits and the current flags: flags are never
           restored. */
        movl    (%rsp), %r9d
        xorl    (%rax), %r9d
        testl   $~0x3f, %r9d
        jz      1f
        movl    (%rax), %r9d
        andl    $0x3f, %r9d
        movl    (%rsp), %r10d
        andl    $~0x3f, %r10d
        orl     %r10d, %r9d
        movl    %r9d, (%rsp)
        ldmxcsr (%rsp)
1:      movzwl  0x4(%rsp), %r9d
        cmpw    0x4(%rax), %r9w
        je      2f
        fldcw   0x4(%rsp)
2:      movq    0x08(%rsp), %r12
        movq    0x10(%rsp), %r13
        movq    0x18(%rsp), %r14
        movq    0x20(%rsp), %r15
        movq    0x28(%rsp), %rbx
        movq    0x30(%rsp), %rbp
        .ifc    \leave, jmp
        movq    0x38(%rsp), %r8
        leaq    0x40(%rsp), %rsp
        .cfi_adjust_cfa_offset -0x40
        .cfi_register %rip, %r8
        .else
        leaq    0x38(%rsp), %rsp
        .cfi_adjust_cfa_offset -0x38
        .endif

        /* Result {from, data}: rax:rdx as a return value, and rdi:rsi as
           the argument of a fresh context's entry function. */
        movq    %rsi, %rdx
        movq    %rax, %rdi
        .ifc    \leave, jmp
        /* notrack: the target is a return address, with no endbr64, as
           for a compiler's jump table under IBT. */
        notrack jmp *%r8
        .else
        ret
        .endif
        .cfi_endproc
        .size   \name, .-\name
        .endm

        .text
        /* How the switch leaves decides which returns the CPU predicts.
           Its return-stack predictor holds the return addresses of the
           calls made on the stack being left.

           weft__context_jump ends with an indirect jump, which leaves the
           predictor's top entry, the caller's own return address, in
           place: every return the resumed side then makes is predicted
           one entry off, so all of them miss (a yield through five frames:
           about 5 ns each).  Right when the two sides called from
           different places and the resumed side makes no return soon: a
           fresh context's first entry, a dying fiber's last jump, or two
           loops that jump to each other (4.7 ns a switch, against 11 with
           a ret).

           weft__context_jump_ret ends with ret, which takes that entry as
           its prediction.  When both sides suspended through the same
           chain of calls (two tasks that yield, or block in the same
           wait), the resumed side's returns are the ones predicted, every
           one of them: a yield between two tasks takes 15 ns instead of
           37. */
        weft_jump weft__context_jump, jmp
        weft_jump weft__context_jump_ret, ret

        .section .note.GNU-stack, "", %progbits
        weft_gnu_property 0xc0000002, 1         /* x86 feature: IBT */
