// SPDX-License-Identifier: MIT
/*
 * The context interface on top of libboost_context (WEFT_CONTEXT=boost).
 *
 * jump maps one to one onto jump_fcontext: same frame semantics, same
 * {from, data} result in the same registers.
 *
 * make needs one addition.  Boost's make_fcontext ends the process with
 * _exit(0) when an entry returns, and weft's contract is to abort with a
 * message.  So the context Boost starts is a small trampoline: make jumps
 * into it once, handing it the real entry; the trampoline keeps the entry in
 * a local and jumps straight back.  The context that make returns is the
 * trampoline, parked; the first real jump resumes it, it calls the entry
 * with that jump's transfer, and aborts if the entry ever returns.
 */
#include "boost_fcontext.h"
#include "context.h"

weft__transfer weft__context_jump(weft__context to, void *data)
{
    transfer_t t = jump_fcontext(to, data);
    return (weft__transfer){t.fctx, t.data};
}

static void trampoline(transfer_t t)
{
    weft__context_entry *entry = (weft__context_entry *)t.data;
    t = jump_fcontext(t.fctx, NULL);
    entry((weft__transfer){t.fctx, t.data});
    weft__context_entry_returned();
}

weft__context weft__context_make(void *stack_top, size_t size, weft__context_entry *entry)
{
    fcontext_t c = make_fcontext(stack_top, size, trampoline);
    return jump_fcontext(c, (void *)entry).fctx;
}
