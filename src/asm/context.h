// SPDX-License-Identifier: MIT
/*
 * The context switch: the lowest layer of weft.
 *
 * A context is a suspended stack: the pointer to a frame of saved registers
 * at the top of the stack it was suspended on.  Two primitives, in the style
 * of Boost.Context's fcontext:
 *
 *   weft__context_make(top, size, entry)
 *       prepares a context on the stack [top - size, top) whose first jump
 *       calls entry(transfer) with a 16-byte-aligned stack.  entry must never
 *       return; if it does, the process aborts with a message.
 *
 *   t = weft__context_jump(to, data)
 *       suspends the running context, resumes `to`, and hands it
 *       {t.from = the context just suspended, t.data = data}.  The caller
 *       continues only when some context jumps back to t.from-as-it-was.
 *
 * A context pointer is single-use: once jumped to, it is consumed; the next
 * time that stack suspends it gets a new pointer, delivered as t.from to
 * whoever it jumps to.
 *
 * Both are implemented in assembly per architecture (jump_*.S, make_*.S),
 * or, with the WEFT_CONTEXT=boost build option, by libboost_context's
 * jump_fcontext and make_fcontext behind this same interface.
 *
 * Nothing here knows about sanitizers, valgrind or stacks' bounds: that is
 * the fiber layer's job (src/fiber/fiber.c), which wraps every jump.
 */
#ifndef WEFT_ASM_CONTEXT_H
#define WEFT_ASM_CONTEXT_H

#include <stddef.h>

typedef void *weft__context;

typedef struct weft__transfer {
    weft__context from;
    void *data;
} weft__transfer;

typedef void weft__context_entry(weft__transfer t);

weft__transfer weft__context_jump(weft__context to, void *data);
/* The same switch, ending with a return instead of an indirect jump: the
   better one when the resumed side suspended through the same chain of
   calls as the caller (jump_x86_64_sysv_elf_gas.S says why).  On aarch64
   weft__context_jump itself resumes with ret, and under Boost.Context the
   switch is Boost's: there both names are one function. */
#if defined(__x86_64__) && !defined(WEFT_CONTEXT_BOOST)
weft__transfer weft__context_jump_ret(weft__context to, void *data);
#else
#define weft__context_jump_ret weft__context_jump
#endif
weft__context weft__context_make(void *stack_top, size_t size, weft__context_entry *entry);

/* Called by the assembly when an entry function returns; never returns. */
_Noreturn void weft__context_entry_returned(void);

/* "asm" or "boost": which implementation this build links. */
extern const char weft__context_impl[];

#endif
