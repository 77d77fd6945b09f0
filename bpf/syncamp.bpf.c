// SPDX-License-Identifier: GPL-2.0
/* syncamp.bpf.c: entry uprobes on QEMU's block layer and the fdatasync/fsync
 * system calls of one process, streamed through one ring buffer.
 *
 * No vmlinux.h: the few kernel structs read here are declared below with
 * preserve_access_index, so CO-RE relocates them against the kernel's BTF.
 */
/* Kernel pt_regs field names (di, si, ...) in bpf_tracing.h, as with vmlinux.h. */
#define __VMLINUX_H__
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "syncamp.h"

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
} __attribute__((preserve_access_index));

struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_enter {
	struct trace_entry ent;
	long id;
	unsigned long args[6];
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_exit {
	struct trace_entry ent;
	long id;
	long ret;
} __attribute__((preserve_access_index));

struct thread_struct {
	unsigned long fsbase;
} __attribute__((preserve_access_index));

struct task_struct {
	struct thread_struct thread;
} __attribute__((preserve_access_index));

/* Set by the collector before load. */
const volatile __u32 target_tgid = 0;
const volatile __u32 co_mode = SYNCAMP_CO_NONE;
/* Offset of QEMU's co_tls_current from the thread pointer (x86-64: fs base). */
const volatile long long co_tls_offset = 0;
/* Offset of `caller` in QEMU's struct Coroutine (include/qemu/coroutine_int.h: entry, entry_arg, caller). */
const volatile long long co_caller_offset = 16;
const volatile long long co_entry_arg_offset = 8;
/* Offset of `opaque` in BlockAIOCB (include/block/aio.h: aiocb_info, bs, cb, opaque). */
const volatile long long aiocb_opaque_offset = 24;

/* The running coroutine per thread, in SYNCAMP_CO_SWITCH mode. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} current_co SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by the collector before load */
} events SEC(".maps");

/* Reservations that failed because the ring buffer was full, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* What each uprobe reads through pointers, indexed by probe id (cookie). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYNCAMP_MAX_PROBES);
	__type(key, __u32);
	__type(value, struct syncamp_probe_spec);
} probe_specs SEC(".maps");

static __always_inline struct syncamp_event *reserve(__u16 kind, __u16 probe_id)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid)
		return NULL;
	struct syncamp_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			*n += 1;
		return NULL;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->cpu = bpf_get_smp_processor_id();
	e->kind = kind;
	e->probe_id = probe_id;
	e->deref_ok = 0;
	e->reserved = 0;
	e->coroutine = 0;
	e->coroutine_caller = 0;
	e->coroutine_arg = 0;
	e->coroutine_opaque = 0;
	for (int i = 0; i < SYNCAMP_MAX_ARGS; i++)
		e->args[i] = 0;
	for (int i = 0; i < SYNCAMP_MAX_DEREFS; i++)
		e->derefs[i] = 0;
	return e;
}

static __always_inline int read_path(const struct syncamp_deref *d, __u64 *args, __u64 *out)
{
	__u32 a = d->arg;
	__u32 hops = d->hops;
	if (hops == 0 || hops > SYNCAMP_MAX_HOPS || a >= SYNCAMP_MAX_ARGS)
		return -1;
	__u64 p = args[a];
	for (__u32 h = 0; h + 1 < SYNCAMP_MAX_HOPS; h++) {
		if (h + 1 >= hops)
			break;
		__u64 next = 0;
		if (bpf_probe_read_user(&next, sizeof(next), (void *)(p + d->off[h])))
			return -1;
		p = next;
	}
	__u32 last = hops - 1;
	if (last >= SYNCAMP_MAX_HOPS)
		return -1;
	p += d->off[last];
	__u64 v = 0;
	__u32 size = d->size;
	if (size > 8)
		size = 8;
	if (size == 0)
		return -1;
	if (bpf_probe_read_user(&v, size, (void *)p))
		return -1;
	*out = v;
	return 0;
}

/* The coroutine running on this thread, or 0. */
static __always_inline __u64 running_coroutine(__u32 tid)
{
	__u64 co = 0;
	if (co_mode == SYNCAMP_CO_TLS) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		unsigned long fsbase = BPF_CORE_READ(task, thread.fsbase);
		if (fsbase)
			bpf_probe_read_user(&co, sizeof(co), (void *)(fsbase + co_tls_offset));
	} else if (co_mode == SYNCAMP_CO_SWITCH) {
		__u64 *p = bpf_map_lookup_elem(&current_co, &tid);
		if (p)
			co = *p;
	}
	return co;
}

/* qemu_coroutine_switch(from, to, action): remembers `to` as the thread's coroutine.
 * Emits nothing; attached only in SYNCAMP_CO_SWITCH mode (binaries without co_tls_current). */
SEC("uprobe")
int syncamp_co_switch(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid)
		return 0;
	__u32 tid = (__u32)id;
	__u64 to = BPF_CORE_READ(ctx, si);
	bpf_map_update_elem(&current_co, &tid, &to, BPF_ANY);
	return 0;
}

SEC("uprobe")
int syncamp_uprobe(struct pt_regs *ctx)
{
	__u32 probe = (__u32)bpf_get_attach_cookie(ctx);
	struct syncamp_event *e = reserve(SYNCAMP_EV_UPROBE, probe);
	if (!e)
		return 0;
	e->args[0] = BPF_CORE_READ(ctx, di);
	e->args[1] = BPF_CORE_READ(ctx, si);
	e->args[2] = BPF_CORE_READ(ctx, dx);
	e->args[3] = BPF_CORE_READ(ctx, cx);
	e->args[4] = BPF_CORE_READ(ctx, r8);
	e->args[5] = BPF_CORE_READ(ctx, r9);
	e->coroutine = running_coroutine(e->tid);
	if (e->coroutine) {
		__u64 caller = 0;
		bpf_probe_read_user(&caller, sizeof(caller), (void *)(e->coroutine + co_caller_offset));
		e->coroutine_caller = caller;
		__u64 arg = 0, opaque = 0;
		if (bpf_probe_read_user(&arg, sizeof(arg), (void *)(e->coroutine + co_entry_arg_offset)) == 0 && arg) {
			e->coroutine_arg = arg;
			if (bpf_probe_read_user(&opaque, sizeof(opaque), (void *)(arg + aiocb_opaque_offset)) == 0)
				e->coroutine_opaque = opaque;
		}
	}
	struct syncamp_probe_spec *spec = bpf_map_lookup_elem(&probe_specs, &probe);
	if (spec) {
		for (int i = 0; i < SYNCAMP_MAX_DEREFS; i++) {
			__u64 v;
			if (read_path(&spec->derefs[i], e->args, &v) == 0) {
				e->derefs[i] = v;
				e->deref_ok |= 1u << i;
			}
		}
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int sys_enter(__u16 which, __u64 fd)
{
	struct syncamp_event *e = reserve(SYNCAMP_EV_SYSCALL_ENTER, which);
	if (!e)
		return 0;
	e->args[0] = fd;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int sys_exit(__u16 which, long ret)
{
	struct syncamp_event *e = reserve(SYNCAMP_EV_SYSCALL_EXIT, which);
	if (!e)
		return 0;
	e->args[0] = (__u64)ret;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* Kernel side, preferred: kprobes on the syscalls (needs CONFIG_KPROBES). */
SEC("ksyscall/fdatasync")
int BPF_KSYSCALL(syncamp_kp_fdatasync, unsigned int fd) { return sys_enter(SYNCAMP_SYS_FDATASYNC, fd); }

SEC("kretsyscall/fdatasync")
int BPF_KRETPROBE(syncamp_krp_fdatasync, long ret) { return sys_exit(SYNCAMP_SYS_FDATASYNC, ret); }

SEC("ksyscall/fsync")
int BPF_KSYSCALL(syncamp_kp_fsync, unsigned int fd) { return sys_enter(SYNCAMP_SYS_FSYNC, fd); }

SEC("kretsyscall/fsync")
int BPF_KRETPROBE(syncamp_krp_fsync, long ret) { return sys_exit(SYNCAMP_SYS_FSYNC, ret); }

/* Kernel side, fallback: the syscalls tracepoints. */
SEC("tracepoint/syscalls/sys_enter_fdatasync")
int syncamp_tp_enter_fdatasync(struct trace_event_raw_sys_enter *ctx)
{
	return sys_enter(SYNCAMP_SYS_FDATASYNC, BPF_CORE_READ(ctx, args[0]));
}

SEC("tracepoint/syscalls/sys_exit_fdatasync")
int syncamp_tp_exit_fdatasync(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(SYNCAMP_SYS_FDATASYNC, BPF_CORE_READ(ctx, ret));
}

SEC("tracepoint/syscalls/sys_enter_fsync")
int syncamp_tp_enter_fsync(struct trace_event_raw_sys_enter *ctx)
{
	return sys_enter(SYNCAMP_SYS_FSYNC, BPF_CORE_READ(ctx, args[0]));
}

SEC("tracepoint/syscalls/sys_exit_fsync")
int syncamp_tp_exit_fsync(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(SYNCAMP_SYS_FSYNC, BPF_CORE_READ(ctx, ret));
}

char LICENSE[] SEC("license") = "GPL";
