/* The monotonic clock in milliseconds: deadlines and timeouts of every
 * thread (the data path's loop_now_ms() reads the same clock). */
#ifndef ZTUNNEL_CLOCK_H
#define ZTUNNEL_CLOCK_H

#include <stdint.h>

int64_t clock_mono_ms(void);

#endif
