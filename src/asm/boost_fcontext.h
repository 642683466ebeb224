// SPDX-License-Identifier: MIT
/* libboost_context's C-linkage entry points (boost/context/detail/fcontext.hpp
   declares them for C++ only). */
#ifndef WEFT_ASM_BOOST_FCONTEXT_H
#define WEFT_ASM_BOOST_FCONTEXT_H

#include <stddef.h>

typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx;
    void *data;
} transfer_t;

extern transfer_t jump_fcontext(fcontext_t const to, void *vp);
extern fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

#endif
