/* `sfbench --gpus N ...`: N ranks on this host, each this program again (without the option)
 * with SFBENCH_RANK, SFBENCH_WORLD, SFBENCH_LOCAL_RANK, and a fresh rendezvous directory and tag.
 * The first rank to fail ends the others, so that none waits forever in a collective for a rank
 * that is gone: after GRACE_S (time for rank 0 to save what was measured) SIGTERM, after as long
 * again SIGKILL. Ctrl-C reaches every rank (one process group); SIGTERM or SIGHUP to the launcher
 * is passed on to them, and a rank whose launcher dies gets SIGTERM. */
#include "config.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/prctl.h>
#include "dist.h"

#define GRACE_S 5

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4400];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

static int exit_status(int status)
{
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

/* waits for every rank; after the first failure (or a SIGTERM/SIGHUP to the launcher), ends the
 * rest: SIGTERM once they have had GRACE_S to end themselves, SIGKILL GRACE_S later */
static int wait_ranks(pid_t *pids, int n)
{
    int left = n, result = 0, failed = -1;
    time_t failed_at = 0;
    int termed = 0;
    while (left > 0) {
        if (stop_signal && failed < 0) {
            failed = n;
            result = 128 + stop_signal;
            failed_at = time(NULL) - GRACE_S;   /* no grace: the launcher itself was told to stop */
        }
        int status;
        pid_t p = waitpid(-1, &status, failed >= 0 ? WNOHANG : 0);
        if (p < 0 && errno == EINTR) continue;
        if (p < 0) break;
        if (p == 0) {   /* ranks left after a failure: SIGTERM after the grace, SIGKILL after another */
            const time_t since = time(NULL) - failed_at;
            const int sig = since >= 2 * GRACE_S ? SIGKILL : since >= GRACE_S && !termed ? SIGTERM : 0;
            if (sig) {
                for (int i = 0; i < n; i++)
                    if (pids[i] > 0) kill(pids[i], sig);
                termed = 1;
            }
            nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
            continue;
        }
        for (int i = 0; i < n; i++) {
            if (pids[i] != p) continue;
            pids[i] = -1;
            left--;
            int code = exit_status(status);
            if (code != 0 && failed < 0) {
                failed = i;
                result = code;
                failed_at = time(NULL);
                if (left > 0)
                    fprintf(stderr, "sfbench: rank %d failed (exit status %d): ending the other ranks\n", i, code);
            }
        }
    }
    return result;
}

int sf_ranks_launch(int n, char **argv)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sfbench-ranks-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "sfbench: cannot create a directory for the ranks' rendezvous (%s): %s\n", dir, strerror(errno));
        return 1;
    }
    char tag[64], num[32];
    snprintf(tag, sizeof tag, "gpus-%d", (int)getpid());
    sf_dist_no_multicast();
    setenv("SFBENCH_DIST_DIR", dir, 1);
    setenv("SFBENCH_DIST_TAG", tag, 1);
    snprintf(num, sizeof num, "%d", n);
    setenv("SFBENCH_WORLD", num, 1);
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    if (!pids) return 1;
    /* SIGTERM and SIGHUP interrupt the launcher's wait (no SA_RESTART), and it ends the ranks;
     * set before the ranks start, so that none is missed (exec resets it in the ranks) */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    const pid_t launcher = getpid();
    fflush(NULL);
    int started = 0;
    for (int r = 0; r < n; r++) {
        pid_t p = fork();
        if (p < 0) {
            fprintf(stderr, "sfbench: cannot start rank %d: %s\n", r, strerror(errno));
            break;
        }
        if (p == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != launcher) _exit(1);   /* the launcher died before prctl */
            snprintf(num, sizeof num, "%d", r);
            setenv("SFBENCH_RANK", num, 1);
            setenv("SFBENCH_LOCAL_RANK", num, 1);
            execv("/proc/self/exe", argv);
            fprintf(stderr, "sfbench: rank %d: cannot run %s: %s\n", r, argv[0], strerror(errno));
            _exit(127);
        }
        pids[r] = p;
        started++;
    }
    if (started < n)
        for (int r = 0; r < started; r++) kill(pids[r], SIGTERM);
    /* Ctrl-C goes to the ranks (the terminal signals the whole group); the launcher waits for them */
    signal(SIGINT, SIG_IGN);
    int status = wait_ranks(pids, started);
    free(pids);
    remove_dir(dir);
    return started < n && status == 0 ? 1 : status;
}
