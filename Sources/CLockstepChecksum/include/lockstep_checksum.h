#ifndef LOCKSTEP_CHECKSUM_H
#define LOCKSTEP_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, as iSCSI, ext4 and
/// SSE4.2's `crc32` instruction) of `count` bytes at `bytes`, continuing from
/// `crc`, the CRC-32C of the bytes before (0 to start). crc32c("123456789")
/// is 0xE3069283.
///
/// On x86-64 with SSE4.2 (checked once at run time) three independent
/// `crc32` streams run interleaved and are combined with a precomputed
/// shift operator (Mark Adler's construction); elsewhere a table-driven
/// byte loop gives the same values.
uint32_t lockstep_crc32c(uint32_t crc, const void *bytes, size_t count);

/// Copies `count` bytes from `source` to `destination` (which must not
/// overlap) and returns their CRC-32C continuing from `crc`: one pass over
/// the data instead of a memcpy followed by a checksum.
uint32_t lockstep_crc32c_copy(uint32_t crc, void *destination, const void *source, size_t count);

/// 1 when the hardware path is in use, 0 for the portable fallback.
int lockstep_crc32c_is_hardware(void);

#endif
