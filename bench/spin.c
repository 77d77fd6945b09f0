/* spin: calls a tiny function N times, for the price of a uprobe hit on each kind of first
 * instruction (bench/uprobe-cost.sh). Waits for a line on stdin first, so that the tracer
 * can attach. usage: spin N [push|nop|nop5|endbr64|mov]
 *
 * The kernel emulates push, nops and relative branches under a uprobe and single-steps
 * everything else out of line (a second trap): each target starts with one such class. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void spin_push(void);
void spin_nop(void);
void spin_nop5(void);
void spin_endbr64(void);
void spin_mov(volatile int *x);
__asm__(".text\n"
	".globl spin_push\n.type spin_push,@function\nspin_push: push %rbp\n pop %rbp\n ret\n.size spin_push,.-spin_push\n"
	".globl spin_nop\n.type spin_nop,@function\nspin_nop: nop\n ret\n.size spin_nop,.-spin_nop\n"
	".globl spin_nop5\n.type spin_nop5,@function\nspin_nop5: .byte 0x0f,0x1f,0x44,0x00,0x00\n ret\n.size spin_nop5,.-spin_nop5\n"
	".globl spin_endbr64\n.type spin_endbr64,@function\nspin_endbr64: .byte 0xf3,0x0f,0x1e,0xfa\n"
	/* a symbol at the push four bytes in, where the collector moves such a probe (bpftrace takes no offsets) */
	".globl spin_endbr64_push\n.type spin_endbr64_push,@function\nspin_endbr64_push: push %rbp\n pop %rbp\n ret\n"
	".size spin_endbr64_push,.-spin_endbr64_push\n.size spin_endbr64,.-spin_endbr64\n"
	".globl spin_mov\n.type spin_mov,@function\nspin_mov: mov (%rdi),%eax\n ret\n.size spin_mov,.-spin_mov\n");

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100000;
	const char *kind = argc > 2 ? argv[2] : "mov";
	volatile int x = 0;
	struct timespec a, b;
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++) {
		if (!strcmp(kind, "push")) spin_push();
		else if (!strcmp(kind, "nop")) spin_nop();
		else if (!strcmp(kind, "nop5")) spin_nop5();
		else if (!strcmp(kind, "endbr64")) spin_endbr64();
		else spin_mov(&x);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n);
	return 0;
}
