/* elfutils for syncamp: libdw reads the DWARF of a QEMU build (parameter lists and
 * struct offsets, SyncampElfutils/DWARFLayout.swift); libdebuginfod fetches debug files
 * by build-id and is loaded at run time with dlopen (as libdwfl does), so the collector
 * runs where it is not installed. */
#ifndef SYNCAMP_CELFUTILS_H
#define SYNCAMP_CELFUTILS_H
#include <elfutils/libdw.h>
#include <dwarf.h>
#include <dlfcn.h>
#endif
