/* capstone, the disassembler syncamp decodes probe sites with (SyncampMachineCode). */
#ifndef SYNCAMP_CCAPSTONE_H
#define SYNCAMP_CCAPSTONE_H
#include <capstone/capstone.h>
#endif
