// SPDX-License-Identifier: MIT
/*
 * Test helper: weft_test_jump_regs(to, data, in, out) sets every
 * callee-saved register to in[], calls weft__context_jump(to, data), and
 * when that returns stores what those registers then hold into out[].  Its
 * own caller's registers are preserved.
 *
 *   in/out: [0..9] x19-x28  [10] x29  [11..18] d8-d15  [19] FPCR
 */
        .text
        .globl  weft_test_jump_regs
        .type   weft_test_jump_regs, %function
        .p2align 4
weft_test_jump_regs:
        .cfi_startproc
        stp     x29, x30, [sp, #-176]!
        .cfi_def_cfa_offset 176
        .cfi_offset x29, -176
        .cfi_offset x30, -168
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        stp     d8,  d9,  [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        str     x3, [sp, #160]
        mrs     x4, fpcr
        str     x4, [sp, #168]

        ldp     x19, x20, [x2, #0]
        ldp     x21, x22, [x2, #16]
        ldp     x23, x24, [x2, #32]
        ldp     x25, x26, [x2, #48]
        ldp     x27, x28, [x2, #64]
        ldr     x29, [x2, #80]
        ldp     d8,  d9,  [x2, #88]
        ldp     d10, d11, [x2, #104]
        ldp     d12, d13, [x2, #120]
        ldp     d14, d15, [x2, #136]
        ldr     x4, [x2, #152]
        msr     fpcr, x4

        bl      weft__context_jump

        ldr     x3, [sp, #160]
        stp     x19, x20, [x3, #0]
        stp     x21, x22, [x3, #16]
        stp     x23, x24, [x3, #32]
        stp     x25, x26, [x3, #48]
        stp     x27, x28, [x3, #64]
        str     x29, [x3, #80]
        stp     d8,  d9,  [x3, #88]
        stp     d10, d11, [x3, #104]
        stp     d12, d13, [x3, #120]
        stp     d14, d15, [x3, #136]
        mrs     x4, fpcr
        str     x4, [x3, #152]

        ldp     x19, x20, [sp, #16]
        ldp     x21, x22, [sp, #32]
        ldp     x23, x24, [sp, #48]
        ldp     x25, x26, [sp, #64]
        ldp     x27, x28, [sp, #80]
        ldp     d8,  d9,  [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldr     x4, [sp, #168]
        msr     fpcr, x4
        ldp     x29, x30, [sp], #176
        .cfi_def_cfa_offset 0
        ret
        .cfi_endproc
        .size   weft_test_jump_regs, .-weft_test_jump_regs

        .section .note.GNU-stack, "", %progbits
