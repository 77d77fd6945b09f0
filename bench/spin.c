/* spin: calls an empty function N times, for the uprobe hit cost (bench/uprobe-cost.sh).
 * Waits for a line on stdin first, so that the tracer can attach. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) void spin_target(volatile int *x) { (*x)++; }

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100000;
	volatile int x = 0;
	struct timespec a, b;
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		spin_target(&x);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n);
	return 0;
}
