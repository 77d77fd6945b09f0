/* cbpf.h: the collector's C boundary with libbpf.
 *
 * libbpf's API, the event layouts shared with the BPF programs (CSyncampEvent),
 * and small header-only shims for what Swift cannot call directly. Everything here is
 * static inline, so importing the module links nothing: only the collector,
 * which calls libbpf, links libbpf.
 */
#ifndef CBPF_H
#define CBPF_H

#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <bpf/btf.h>
#include "syncamp.h"

/* libbpf's print callback takes a va_list, which Swift cannot format: these
 * shims forward libbpf's messages to stderr. The setting lives in libbpf (which
 * callback is installed), not in a static variable here: each Swift file that
 * inlines these functions would get its own copy of one, and an optimized build
 * may drop a copy it never sees read. */
static inline int cbpf_print_warnings(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level != LIBBPF_WARN)
		return 0;
	return vfprintf(stderr, fmt, args);
}
static inline int cbpf_print_all(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return vfprintf(stderr, fmt, args);
}
static inline int cbpf_print_none(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return 0;
}

/* Warnings only, or every message when verbose. */
static inline void cbpf_set_print(int verbose)
{
	libbpf_set_print(verbose ? cbpf_print_all : cbpf_print_warnings);
}

/* Silences libbpf while trying something that may fail (kprobes); verbose still
 * shows everything. Pass the same verbose flag as to cbpf_set_print. */
static inline void cbpf_set_quiet(int quiet, int verbose)
{
	libbpf_set_print(verbose ? cbpf_print_all : quiet ? cbpf_print_none : cbpf_print_warnings);
}

/* LIBBPF_OPTS is a macro: these build the options structs Swift needs. */
static inline struct bpf_link *cbpf_attach_uprobe(struct bpf_program *prog, pid_t pid,
						 const char *binary, size_t offset,
						 unsigned long long cookie)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie, .retprobe = false);
	return bpf_program__attach_uprobe_opts(prog, pid, binary, offset, &opts);
}

/* Attaches a USDT program to every site of provider:name in binary for pid;
 * the cookie is what bpf_usdt_cookie() returns (libbpf keeps the BPF cookie
 * for its own spec id). LIBBPF_OPTS is a macro Swift cannot use. */
static inline struct bpf_link *cbpf_attach_usdt(struct bpf_program *prog, pid_t pid, const char *binary,
						const char *provider, const char *name, unsigned long long cookie)
{
	LIBBPF_OPTS(bpf_usdt_opts, opts, .usdt_cookie = cookie);
	return bpf_program__attach_usdt(prog, pid, binary, provider, name, &opts);
}

/* Sets a `const volatile` global in .rodata before load, as a skeleton
 * would: finds the variable's offset through the object's BTF (the
 * btf_var_secinfos() iteration is a macro Swift cannot use). Returns 0 or a
 * negative errno. */
static inline int cbpf_set_rodata(struct bpf_object *obj, const char *name, const void *value, size_t value_size)
{
	struct bpf_map *map = bpf_object__find_map_by_name(obj, ".rodata");
	struct btf *btf = bpf_object__btf(obj);
	if (!map || !btf)
		return -ENOENT;
	size_t size = 0;
	const char *initial = bpf_map__initial_value(map, &size);
	int sec = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (!initial || sec < 0 || size > 4096)
		return -ENOENT;
	char data[4096];
	memcpy(data, initial, size);
	const struct btf_type *t = btf__type_by_id(btf, sec);
	const struct btf_var_secinfo *v = btf_var_secinfos(t);
	for (int i = 0; i < btf_vlen(t); i++, v++) {
		const struct btf_type *var = btf__type_by_id(btf, v->type);
		if (strcmp(btf__name_by_offset(btf, var->name_off), name) == 0) {
			if (v->size != value_size || v->offset + value_size > size)
				return -ERANGE;
			memcpy(data + v->offset, value, value_size);
			return bpf_map__set_initial_value(map, data, size);
		}
	}
	return -ENOENT;
}

/* libbpf returns NULL and sets errno on failure (libbpf 1.0 mode). */
static inline int cbpf_errno(void) { return errno; }

#endif /* CBPF_H */
