/* flood: calls fdatasync on a tmpfs file at a set rate, for the no-loss benchmark.
 *
 *   flood RATE SECONDS     # RATE fdatasync calls per second (2 events each when traced)
 *
 * It waits for a line on stdin before starting, so that the tracer can attach
 * first, and prints how many calls it made and at what rate it really ran. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: flood RATE SECONDS\n");
		return 2;
	}
	double rate = atof(argv[1]), seconds = atof(argv[2]);
	char path[] = "/dev/shm/syncamp-flood-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("flood: mkstemp");
		return 1;
	}
	unlink(path);
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 1;
	double start = now(), t;
	long done = 0;
	while ((t = now() - start) < seconds) {
		long due = (long)(rate * t);
		if (done >= due) {
			struct timespec pause = {0, 20000};
			nanosleep(&pause, NULL);
			continue;
		}
		while (done < due) {
			fdatasync(fd);
			done++;
		}
	}
	printf("%ld calls in %.3f s: %.0f per second\n", done, now() - start, done / (now() - start));
	return 0;
}
