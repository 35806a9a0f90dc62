/*
 * pagewire uffd preload library: loaded into a program with LD_PRELOAD, it creates a
 * userfaultfd in write-protect asynchronous mode inside that program, so that
 * `pagewire trace record --tracker uffd` can take it over (pidfd_getfd) and track the
 * program's writes exactly. It does nothing else: it registers no memory (the recorder
 * does), reads no events, and leaves the program alone if the kernel refuses.
 *
 * A userfaultfd belongs to the memory of the process that creates it, which is why it has
 * to be created in the target. Async write-protect faults are resolved by the kernel
 * itself, so nobody ever has to read from this descriptor.
 *
 * Built by bench-harness/build.rs and embedded into the pagewire binary.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* From the kernel's include/uapi/linux/userfaultfd.h (6.7 and later). Defined here so the
 * library builds against older installed headers; the running kernel decides. */
#define PW_UFFD_API 0xAAULL
#define PW_UFFD_USER_MODE_ONLY 1
#define PW_UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#define PW_UFFD_FEATURE_WP_ASYNC (1ULL << 15)

struct pw_uffdio_api {
    uint64_t api;
    uint64_t features;
    uint64_t ioctls;
};

#define PW_UFFDIO_API _IOWR(0xAA, 0x3F, struct pw_uffdio_api)

/* The descriptor is moved at or above this number, away from the low numbers that some
 * programs expect to be free. */
#define PW_UFFD_MIN_FD 256

static void report(const char *what)
{
    fprintf(stderr, "pagewire-uffd-preload: %s: %s (write tracking unavailable)\n", what,
            strerror(errno));
}

__attribute__((constructor)) static void pagewire_uffd_preload(void)
{
    int saved_errno = errno;
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == EPERM) {
        /* Without CAP_SYS_PTRACE and with vm.unprivileged_userfaultfd=0, only user-mode
         * faults may be handled; async write-protect faults are resolved in the kernel
         * either way. */
        fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | PW_UFFD_USER_MODE_ONLY);
    }
    if (fd < 0) {
        report("userfaultfd");
        errno = saved_errno;
        return;
    }
    struct pw_uffdio_api api = {
        .api = PW_UFFD_API,
        .features = PW_UFFD_FEATURE_WP_ASYNC | PW_UFFD_FEATURE_WP_UNPOPULATED,
    };
    if (ioctl(fd, PW_UFFDIO_API, &api) != 0) {
        report("UFFDIO_API with WP_ASYNC | WP_UNPOPULATED");
        close(fd);
        errno = saved_errno;
        return;
    }
    int high = fcntl(fd, F_DUPFD_CLOEXEC, PW_UFFD_MIN_FD);
    if (high >= 0) {
        close(fd);
    }
    errno = saved_errno;
}
