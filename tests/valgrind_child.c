// SPDX-License-Identifier: MIT
/*
 * Runs each test, not the runner, under valgrind.
 *
 * Criterion runs every test in a child process that it starts by executing
 * its own binary again, with BXFI_MAP in the environment.  Run whole under
 * `valgrind --trace-children=yes`, the runner itself is slowed down and
 * serialised too, and it feeds two jobs no faster than one.  With
 * WEFT_TEST_VALGRIND set to a valgrind command line (words split on
 * spaces: no quoting, so paths in it must have none), the runner runs natively and each test child executes itself
 * again under that command: same pid, same environment and descriptors
 * (BoxFort's shared map is found by name), so the runner sees nothing but
 * a slower child.  The variable is removed first: the child does not
 * restart itself again, and what it forks or executes is valgrind's
 * business (--trace-children).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void valgrind_child(int argc, char **argv, char **envp)
{
    (void)envp;
    const char *cmd = getenv("WEFT_TEST_VALGRIND");
    if (!cmd || !getenv("BXFI_MAP"))
        return;
    char *words = strdup(cmd);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (!words || n <= 0) {
        fprintf(stderr, "weft tests: WEFT_TEST_VALGRIND: cannot find this program\n");
        _exit(98);
    }
    exe[n] = '\0';
    unsetenv("WEFT_TEST_VALGRIND");
    char **args = calloc((size_t)argc + strlen(words) / 2 + 3, sizeof *args);
    if (!args)
        _exit(98);
    int k = 0;
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save))
        args[k++] = w;
    if (k == 0) {
        fprintf(stderr, "weft tests: WEFT_TEST_VALGRIND holds no command\n");
        _exit(98);
    }
    args[k++] = exe;
    for (int i = 1; i < argc; i++)
        args[k++] = argv[i];
    args[k] = NULL;
    execvp(args[0], args);
    fprintf(stderr, "weft tests: WEFT_TEST_VALGRIND: cannot run %s: %s\n", args[0], strerror(errno));
    _exit(98);
}
