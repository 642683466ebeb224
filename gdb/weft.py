# SPDX-License-Identifier: MIT
"""gdb commands for programs built on weft.

    info weft-tasks         every live task of every loop: id, name, state,
                            worker, where it waits, its stack and how much
                            of it is in use
    weft-bt ID [BT-ARGS]    the backtrace of task ID; BT-ARGS go to `bt`
                            (e.g. `weft-bt 7 full`, `weft-bt 7 -frame-arguments all`)
    weft-task ID | off      the task's frames become the selected thread's,
                            for `frame N`, `info locals`, `print`
    weft-gcore [FILE]       gcore, with the fiber stacks that gcore drops

Load it with `source /usr/share/weft/gdb/weft.py`, or let gdb auto-load it
with libweft.so (docs/debugging.md).  It needs libweft's debug information:
it reads the scheduler's own structures.

A suspended task is not on any thread: its registers are in the frame the
context switch saved at the top of its stack (struct weft__fiber.ctx points
at it; the layout is in src/asm/jump_*.S).  weft-bt shows it with a Python
frame unwinder that, for the duration of one backtrace, says the selected
thread's innermost frame was called from that saved frame; a frame filter
hides that innermost frame.  Nothing is written to the inferior, so the same
works on a running process and on a core file.
"""

import struct

import gdb
import gdb.unwinder

try:
    from gdb.unwinder import FrameId as _FrameId
except ImportError:  # gdb before 14: any object with sp and pc will do
    class _FrameId(object):
        def __init__(self, sp, pc):
            self.sp = sp
            self.pc = pc


# ---- the saved frame, per architecture -------------------------------------

# (register, offset in the saved frame); "sp" is the stack pointer after the
# switch returns: the context pointer plus the frame's size.
_LAYOUTS = {
    # src/asm/jump_x86_64_sysv_elf_gas.S: MXCSR, x87 CW, r12-r15, rbx, rbp, rip.
    "i386:x86-64": {
        "pc": "rip",
        "sp": "rsp",
        "size": 0x40,
        "fresh": 0x50,  # make_x86_64: a new context's frame, below the 16-aligned top
        "regs": [("r12", 0x08), ("r13", 0x10), ("r14", 0x18), ("r15", 0x20),
                 ("rbx", 0x28), ("rbp", 0x30), ("rip", 0x38)],
    },
    # src/asm/jump_aarch64_aapcs_elf_gas.S: d8-d15, x19-x28, x29, x30, pc, FPCR.
    "aarch64": {
        "pc": "pc",
        "sp": "sp",
        "size": 0xb0,
        "fresh": 0xb0,  # make_aarch64
        "regs": [("x%d" % (19 + i), 0x40 + 8 * i) for i in range(10)]
        + [("x29", 0x90), ("x30", 0x98), ("pc", 0xa0)],
    },
}


def _layout():
    arch = gdb.selected_inferior().architecture().name()
    for name, layout in _LAYOUTS.items():
        if arch.startswith(name):
            return layout
    raise gdb.GdbError("weft: no saved-context layout known for architecture %s" % arch)


def _u64(addr):
    return struct.unpack("<Q", bytes(gdb.selected_inferior().read_memory(addr, 8)))[0]


# ---- the unwinder and the frame filter --------------------------------------


class _Switched(object):
    """What the unwinder and the filter do while active: the selected
    thread's frame 0 unwinds into the saved context at `ctx`."""

    def __init__(self):
        self.thread = None  # global_num of the thread whose frame 0 is hijacked
        self.ctx = None
        self.regs = None  # register name -> value, read once
        self.past_main = False  # the user's `backtrace past-main`
        # The level of the thread's innermost real frame: inline frames,
        # which gdb finds before any Python unwinder is asked, can sit on it.
        self.level = 0


_state = _Switched()


class _TaskUnwinder(gdb.unwinder.Unwinder):
    def __init__(self):
        super(_TaskUnwinder, self).__init__("weft-task")

    def __call__(self, pending):
        if _state.ctx is None or pending.level() != _state.level:
            return None
        thread = gdb.selected_thread()
        if thread is None or thread.global_num != _state.thread:
            return None
        layout = _layout()
        pc = pending.read_register(layout["pc"])
        # Below the saved frame: frame 0's id is inner to the task's frames,
        # as gdb's sanity checks expect of a callee.
        info = pending.create_unwind_info(_FrameId(gdb.Value(_state.ctx), pc))
        ptr = gdb.lookup_type("unsigned long")
        for name, value in _state.regs.items():
            info.add_saved_register(name, gdb.Value(value).cast(ptr))
        return info


class _HideFrame0(object):
    """While a task's backtrace is shown, frame 0 is the thread's real
    innermost frame, which is not the task's: leave it out."""

    def __init__(self):
        self.name = "weft-task"
        self.priority = 100
        self.enabled = True

    def filter(self, frames):
        if _state.ctx is None:
            return frames
        return _skip_first(frames)


def _skip_first(frames):
    skip = _state.level + 1
    for f in frames:
        if skip:
            skip -= 1
            continue
        yield f


def _register():
    # Loaded twice (auto-load and a `source`): replace, do not duplicate.
    gdb.unwinder.register_unwinder(None, _TaskUnwinder(), replace=True)
    gdb.frame_filters["weft-task"] = _HideFrame0()


def _set(thread, ctx, regs, level=0):
    # gdb stops unwinding at main (`backtrace past-main`): when the thread
    # is stopped in main itself, frame 0 would have no caller at all.
    if ctx is not None and _state.ctx is None:
        _state.past_main = gdb.parameter("backtrace past-main")
        gdb.execute("set backtrace past-main on", to_string=True)
    elif ctx is None and _state.ctx is not None:
        gdb.execute("set backtrace past-main %s" % ("on" if _state.past_main else "off"),
                    to_string=True)
    _state.thread, _state.ctx, _state.regs, _state.level = thread, ctx, regs, level
    gdb.invalidate_cached_frames()


def _inline_depth():
    """How many inline frames sit on the selected thread's innermost real
    frame, with no task's frames in force."""
    saved = (_state.thread, _state.ctx, _state.regs, _state.level)
    _set(None, None, None)
    try:
        f, n = gdb.newest_frame(), 0
        while f is not None and f.type() == gdb.INLINE_FRAME:
            f, n = f.older(), n + 1
        return n
    finally:
        _set(*saved)


class _Suspended(object):
    """with _Suspended(ctx): the selected thread's frames are those of the
    task suspended at ctx, from frame 1 on (or further: see _inline_depth).
    What was in force before
    (weft-task's choice, or nothing) comes back on exit."""

    def __init__(self, ctx):
        self.ctx = int(ctx)
        self.saved = None

    def __enter__(self):
        thread = gdb.selected_thread()
        if thread is None:
            raise gdb.GdbError("weft: no thread selected (is the program running?)")
        layout = _layout()
        regs = {}
        for name, off in layout["regs"]:
            regs[name] = _u64(self.ctx + off)
        regs[layout["sp"]] = self.ctx + layout["size"]
        self.saved = (_state.thread, _state.ctx, _state.regs, _state.level)
        _set(thread.global_num, self.ctx, regs, _inline_depth())
        return self

    def __exit__(self, *exc):
        _set(*self.saved)
        return False


# ---- finding the tasks --------------------------------------------------------

_WAITER_FINISHED = 4
_CANCEL_WHERE_SHIFT = 8
_CANCEL_WHERE_PARK = 0x800000
_RUNQ_IDX_BITS = 21
_RUNQ_IDX_MASK = (1 << _RUNQ_IDX_BITS) - 1


def _type(name):
    try:
        return gdb.lookup_type(name)
    except gdb.error:
        raise gdb.GdbError(
            "weft: no type %s: libweft's debug information is not loaded "
            "(install its debug symbols, or build it with -g)" % name)


def _loops():
    """Every loop in weft__debug_loops, as weft__sched values."""
    sym = gdb.lookup_global_symbol("weft__debug_loops")
    if sym is None:
        sym = gdb.lookup_static_symbol("weft__debug_loops")
    if sym is None:
        try:
            head = gdb.parse_and_eval("weft__debug_loops")
        except gdb.error:
            raise gdb.GdbError("weft: no symbol weft__debug_loops: is the program linked with "
                               "libweft, and is its debug information loaded?")
    else:
        head = sym.value()
    loops = []
    seen = set()
    while int(head) != 0 and int(head) not in seen and len(loops) < 1024:
        seen.add(int(head))
        loops.append(head.dereference())
        head = head["debug_next"]
    return loops


def _name(task):
    raw = bytes(gdb.selected_inferior().read_memory(task["name"].address, 32))
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


class Task(object):
    __slots__ = ("loop", "loop_index", "task", "fiber", "id", "name", "state", "worker", "ctx",
                 "stack_lo", "stack_top", "sp", "thread", "main", "where", "fresh")


def _queued(loop):
    """task address -> where it waits to run ("worker N's run queue", ...)."""
    out = {}
    n = int(loop["nworkers"])
    workers = loop["workers"]
    for i in range(n):
        w = workers[i]
        word = int(w["q"]["word"])
        head = (word >> _RUNQ_IDX_BITS) & _RUNQ_IDX_MASK
        tail = word & _RUNQ_IDX_MASK
        slots = w["q"]["slot"]
        size = slots.type.range()[1] + 1
        count = (tail - head) & _RUNQ_IDX_MASK
        for k in range(min(count, size)):
            t = int(slots[(head + k) % size])
            if t:
                out[t] = ("runnable", i)
        t = w["inbox"]
        for _ in range(100000):
            if int(t) == 0:
                break
            out[int(t)] = ("runnable", i)
            t = t["link"]
    t = loop["global_head"]
    for _ in range(1000000):
        if int(t) == 0:
            break
        out[int(t)] = ("runnable", None)
        t = t["link"]
    return out


def _threads_by_lwp():
    out = {}
    inf = gdb.selected_inferior()
    for th in inf.threads():
        out[th.ptid[1]] = th
    return out


def tasks():
    """Every live task of every loop, as Task records."""
    task_t = _type("weft__task")
    fiber_t = _type("weft__fiber")
    fiber_size = fiber_t.sizeof
    char_p = gdb.lookup_type("char").pointer()
    threads = _threads_by_lwp()
    fresh = _layout()["fresh"]
    out = []
    for li, loop in enumerate(_loops()):
        n = int(loop["nworkers"])
        workers = loop["workers"]
        running = {}
        tids = {}
        for i in range(n):
            r = int(workers[i]["running"])
            if r:
                running[r] = i
            tids[i] = int(workers[i]["tid"])
        queued = _queued(loop)
        found = [loop["main_task"].address]
        s = loop["pool"]["all"]
        seen = set()
        while int(s) != 0 and int(s) not in seen:
            seen.add(int(s))
            if bool(s["in_use"]):
                f = (s.cast(char_p) - fiber_size).cast(fiber_t.pointer())
                extra = int(f["extra"])
                if extra:
                    t = gdb.Value(extra).cast(task_t.pointer())
                    if int(t["fiber"]) == int(f) and int(t["sched"]) == int(loop.address):
                        found.append(t)
            s = s["all_next"]
        for t in found:
            rec = Task()
            rec.loop = loop
            rec.loop_index = li
            rec.task = t
            rec.fiber = t["fiber"]
            rec.main = bool(int(t["flags"]) & 4)
            rec.id = int(t["id"])
            rec.name = _name(t)
            rec.ctx = int(rec.fiber["ctx"])
            rec.stack_lo = int(rec.fiber["stack_lo"])
            rec.stack_top = rec.stack_lo + int(rec.fiber["stack_size"]) if rec.stack_lo else 0
            rec.thread = None
            rec.where = None
            addr = int(t)
            cancel = int(t["cancel"]) >> _CANCEL_WHERE_SHIFT
            if int(t["waiter"]) == _WAITER_FINISHED:
                rec.state, rec.worker = "finished", None
                rec.ctx = None
            elif addr in running:
                rec.state, rec.worker = "running", running[addr]
                rec.ctx = None
                rec.thread = threads.get(tids[rec.worker])
            elif addr in queued:
                rec.state, rec.worker = queued[addr]
            else:
                rec.state, rec.worker = "parked", None
                if cancel and not cancel & _CANCEL_WHERE_PARK:
                    rec.worker = cancel - 1  # an operation on that worker's ring
            if rec.worker is None and int(t["pinned"]):
                rec.worker = int(t["pinned"]["index"])
            # Never run: its context is still the one weft__fiber_create made,
            # whose stack top is the task record (src/fiber/fiber.c).
            rec.fresh = rec.ctx is not None and rec.ctx == (addr & ~15) - fresh
            rec.sp = rec.ctx
            if rec.state == "running" and rec.thread is not None:
                rec.sp = _thread_sp(rec.thread)
            out.append(rec)
    out.sort(key=lambda r: (r.loop_index, r.id))
    return out


def _thread_sp(thread):
    prev = gdb.selected_thread()
    try:
        thread.switch()
        return int(gdb.newest_frame().read_register(_layout()["sp"]))
    except gdb.error:
        return None
    finally:
        if prev is not None:
            prev.switch()


def _find(arg):
    loop, _, ident = arg.rpartition(".")
    try:
        want = int(ident, 0)
        loop = int(loop) if loop else None
    except ValueError:
        want = loop = None
    all_tasks = tasks()
    hits = [r for r in all_tasks
            if r.id == want and (loop is None or r.loop_index == loop)] if want is not None else []
    if not hits:
        hits = [r for r in all_tasks if r.name == arg]
    if not hits:
        raise gdb.GdbError("weft: no live task %s" % arg)
    if len(hits) > 1:
        # Two loops' tasks with one id, or two tasks with one name: say
        # which, rather than pick one.
        raise gdb.GdbError("weft: %d live tasks match %s: %s; name one by LOOP.ID"
                           % (len(hits), arg,
                              ", ".join("%d.%d" % (r.loop_index, r.id) for r in hits)))
    return hits[0]


# ---- where a task waits ----------------------------------------------------------

_WEFT_DIRS = ("/src/sched/", "/src/uring/", "/src/io/", "/src/fiber/", "/src/asm/",
              "/include/weft/")


def _is_weft(frame):
    name = frame.name() or ""
    if name.startswith("weft_") or name.startswith("weft__"):
        return True
    try:
        symtab = frame.find_sal().symtab
    except gdb.error:
        symtab = None
    if symtab is None:
        return False
    fn = symtab.fullname() if hasattr(symtab, "fullname") else symtab.filename
    return any(d in fn for d in _WEFT_DIRS)


def _wait_point(ctx, limit=48):
    """The weft call the task suspended in: the outermost frame of the weft
    frames at the top of its stack (weft_sleep, weft_mutex_lock, ...)."""
    try:
        with _Suspended(ctx):
            f = gdb.newest_frame()
            for _ in range(_state.level + 1):  # the thread's own
                f = f.older() if f is not None else None
            last = None
            for _ in range(limit):
                if f is None or not _is_weft(f):
                    break
                last = f
                f = f.older()
            if last is None:
                return None
            name = last.name()
            # The entry of a context that never ran (src/asm/make_*.S; the
            # name reads "weft.context_start" in clang's debug information).
            if name and name.endswith("context_start"):
                return "(not started)"
            return name
    except gdb.error:
        return None


# ---- the commands ----------------------------------------------------------------------


def _fmt_worker(w):
    return "-" if w is None else str(w)


def _state_text(rec):
    if rec.state == "running":
        return "running on worker %d" % rec.worker
    if rec.state == "runnable":
        return "runnable"
    return rec.state


class InfoWeftTasks(gdb.Command):
    """List the live tasks of every weft event loop.
Usage: info weft-tasks [-nowait]

For each task: its id, its name (weft_task_set_name), its state (running on
worker N, runnable, parked, or finished and waiting to be awaited), the
worker (running on it, queued on it, pinned to it, or with an operation in
flight on its ring), the weft call it is suspended in (found by unwinding
its saved frame; -nowait skips that), its stack's range and the bytes of
stack in use (stack top minus its stack pointer)."""

    def __init__(self):
        super(InfoWeftTasks, self).__init__("info weft-tasks", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        nowait = "-nowait" in gdb.string_to_argv(arg)
        recs = tasks()
        loops = len(set(r.loop_index for r in recs))
        rows = []
        for r in recs:
            where = ""
            if r.fresh:
                where = "(not started)"
            elif r.state in ("parked", "runnable") and r.ctx and not nowait:
                where = _wait_point(r.ctx) or "?"
            elif r.state == "running" and r.thread is not None:
                where = "thread %d (LWP %d)" % (r.thread.num, r.thread.ptid[1])
            if r.stack_lo:
                stack = "0x%x-0x%x" % (r.stack_lo, r.stack_top)
            else:
                stack = "thread stack"
            used = "-"
            if r.sp and r.stack_top and r.stack_lo <= r.sp <= r.stack_top:
                used = str(r.stack_top - r.sp)
            name = '"%s"' % r.name if r.name else ""
            ident = str(r.id) if loops < 2 else "%d.%d" % (r.loop_index, r.id)
            rows.append((ident, name, _state_text(r), _fmt_worker(r.worker), where, stack, used))
        if not rows:
            gdb.write("No weft event loop.\n")
            return
        head = ("Id", "Name", "State", "Worker", "Where", "Stack", "Used")
        widths = [max(len(h), max(len(row[i]) for row in rows)) for i, h in enumerate(head)]
        line = "  ".join("%-*s" for _ in head).rstrip()
        gdb.write((line % sum(zip(widths, head), ())).rstrip() + "\n")
        for row in rows:
            gdb.write((line % sum(zip(widths, row), ())).rstrip() + "\n")


class WeftBt(gdb.Command):
    """Backtrace of a weft task.
Usage: weft-bt ID|NAME [BT-OPTIONS]

ID is a task id from `info weft-tasks` (or its name).  A suspended task's
frames are unwound from the context its last switch saved; a running task's
backtrace is that of the worker thread it runs on.  BT-OPTIONS are passed to
`backtrace` (e.g. `full`, `-frame-arguments all`, a frame count)."""

    def __init__(self):
        super(WeftBt, self).__init__("weft-bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if not argv:
            raise gdb.GdbError("usage: weft-bt ID|NAME [BT-OPTIONS]")
        rec = _find(argv[0])
        rest = " ".join(argv[1:])
        label = 'task %d%s' % (rec.id, ' "%s"' % rec.name if rec.name else "")
        if rec.state == "finished":
            gdb.write("%s has finished (its future is not yet awaited): no frames\n" % label)
            return
        if rec.state == "running":
            if rec.thread is None:
                raise gdb.GdbError("weft: %s runs on worker %d, whose thread gdb does not show"
                                   % (label, rec.worker))
            gdb.write("%s, running on worker %d: thread %d (LWP %d)\n"
                      % (label, rec.worker, rec.thread.num, rec.thread.ptid[1]))
            prev = gdb.selected_thread()
            rec.thread.switch()
            try:
                gdb.execute("backtrace " + rest, from_tty)
            finally:
                prev.switch()
            return
        gdb.write("%s, %s, suspended at sp 0x%x\n" % (label, _state_text(rec), rec.ctx))
        with _Suspended(rec.ctx):
            gdb.execute("backtrace " + rest, from_tty)


# ---- cores ------------------------------------------------------------------------------

_PAGE = 4096


def _stack_ranges():
    """[lo, end) of every mapped stack of every loop: its usable bytes and
    its header (the pool's list runs through the headers)."""
    stack_t = _type("weft__stack")
    out = []
    for loop in _loops():
        pool = loop["pool"]
        size = int(pool["size"])
        s = pool["all"]
        seen = set()
        while int(s) != 0 and int(s) not in seen:
            seen.add(int(s))
            top = int(s) + stack_t.sizeof
            out.append((top - size, top))
            s = s["all_next"]
    return out


def _core_segments(f):
    """(vaddr, offset, filesz) of each PT_LOAD of the ELF64 core open in f."""
    f.seek(0)
    ehdr = f.read(64)
    if ehdr[:4] != b"\x7fELF" or ehdr[4] != 2:
        raise gdb.GdbError("weft-gcore: not an ELF64 file")
    end = "<" if ehdr[5] == 1 else ">"
    phoff, shoff = struct.unpack_from(end + "QQ", ehdr, 0x20)
    phentsize, phnum = struct.unpack_from(end + "HH", ehdr, 0x36)
    if phnum == 0xFFFF:  # PN_XNUM: the count is in section header 0
        f.seek(shoff + 0x2C)
        phnum = struct.unpack(end + "I", f.read(4))[0]
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    segs = []
    for i in range(phnum):
        p_type, _, off, vaddr, _, filesz = struct.unpack_from(end + "IIQQQQ", table, i * phentsize)
        if p_type == 1:
            segs.append((vaddr, off, filesz))
    segs.sort()
    return segs


def _patch_core(path, ranges):
    """Writes the live process's bytes for ranges into the core at path,
    where its PT_LOAD segments cover them.  Returns the bytes written."""
    import bisect

    inf = gdb.selected_inferior()
    written = 0
    with open(path, "r+b") as f:
        segs = _core_segments(f)
        starts = [s[0] for s in segs]
        for lo, hi in ranges:
            addr = lo
            while addr < hi:
                i = bisect.bisect_right(starts, addr) - 1
                if i < 0 or addr >= segs[i][0] + segs[i][2]:
                    addr = (addr + _PAGE) & ~(_PAGE - 1)
                    continue
                vaddr, off, filesz = segs[i]
                n = min(hi, vaddr + filesz, (addr + _PAGE) & ~(_PAGE - 1)) - addr
                try:
                    data = bytes(inf.read_memory(addr, n))
                except gdb.MemoryError:
                    data = None
                if data and data.count(0) != len(data):
                    f.seek(off + addr - vaddr)
                    f.write(data)
                    written += len(data)
                addr += n
    return written


class WeftGcore(gdb.Command):
    """Write a core file of the process, with every weft stack in it.
Usage: weft-gcore [FILE]

As `gcore FILE`, then writes the fiber stacks into the core again.  Where
the kernel has MADV_GUARD_INSTALL (Linux 6.13+), weft's stack guards are
inside the stacks' mappings; gdb's gcore reads a mapping in 1 MiB pieces
and drops a piece that touches a guard page, so its core holds zeros for
the stacks.  This reads each stack's usable bytes (never its guard) and
puts them where gcore left zeros."""

    def __init__(self):
        super(WeftGcore, self).__init__("weft-gcore", gdb.COMMAND_FILES, gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        inf = gdb.selected_inferior()
        if inf.pid == 0:
            raise gdb.GdbError("weft-gcore: no live process")
        path = argv[0] if argv else "core.%d" % inf.pid
        ranges = _stack_ranges()  # before gcore: the same answer, and fails early
        gdb.execute("gcore " + path, from_tty)
        n = _patch_core(path, ranges)
        gdb.write("weft-gcore: wrote %d bytes of %d fiber stacks into %s\n" % (n, len(ranges), path))


class WeftTask(gdb.Command):
    """Make a suspended weft task's frames the selected thread's, to look around.
Usage: weft-task ID|NAME
       weft-task off

From then on the selected thread's backtrace is the task's (from frame 1,
or a little further if the thread stopped inside inlined code: the thread's
own innermost frames are left out of `bt`), so `frame N`, `up`,
`info locals` and `print` work in the task's frames.  `weft-task off`, or
resuming the program, gives the thread its own frames back."""

    def __init__(self):
        super(WeftTask, self).__init__("weft-task", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if not argv or argv[0] == "off":
            if _state.ctx is not None:
                _set(None, None, None)
                gdb.write("weft-task: the thread's own frames again\n")
            return
        rec = _find(argv[0])
        if rec.state not in ("parked", "runnable") or not rec.ctx:
            raise gdb.GdbError("weft-task: task %d is %s, not suspended%s"
                               % (rec.id, _state_text(rec),
                                  " (its frames are its thread's)" if rec.state == "running" else ""))
        s = _Suspended(rec.ctx)
        s.__enter__()  # and no __exit__: it stays until `weft-task off`
        gdb.write('weft-task: task %d%s (%s): its frames from frame %d on; `weft-task off` to undo\n'
                  % (rec.id, ' "%s"' % rec.name if rec.name else "", _state_text(rec),
                     _state.level + 1))
        gdb.execute("frame %d" % (_state.level + 1), from_tty)


def _on_resume(event):
    if _state.ctx is not None:
        _set(None, None, None)


_register()
gdb.events.cont.connect(_on_resume)
WeftTask()
InfoWeftTasks()
WeftBt()
WeftGcore()
