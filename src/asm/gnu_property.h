// SPDX-License-Identifier: MIT
/*
 * The ELF note that tells the linker and the loader which control-flow
 * protections an object is compatible with (.note.gnu.property,
 * NT_GNU_PROPERTY_TYPE_0).  The linker keeps a feature for a program only
 * if every object linked into it carries the feature, so an assembly file
 * without this note turns the feature off for everything that links it.
 *
 *   weft_gnu_property TYPE, BITS
 *
 * TYPE is GNU_PROPERTY_X86_FEATURE_1_AND (0xc0000002; bit 0 IBT, bit 1
 * SHSTK) or GNU_PROPERTY_AARCH64_FEATURE_1_AND (0xc0000000; bit 0 BTI, bit 1
 * PAC).  Which bits weft's assembly claims, and why, is in docs/context.md.
 */
        .macro  weft_gnu_property type, bits
        .pushsection .note.gnu.property, "a"
        .p2align 3
        .long   4               /* name size: "GNU" and its NUL */
        .long   16              /* descriptor size: one property, padded to 8 */
        .long   5               /* NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .long   \type           /* pr_type */
        .long   4               /* pr_datasz */
        .long   \bits           /* pr_data */
        .long   0               /* padding to 8 bytes */
        .popsection
        .endm
