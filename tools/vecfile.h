/* Readers for the usual files of vectors, one record at a time, into float32:
 *
 *   .fvecs  per record: int32 little-endian dimension, then that many float32
 *   .bvecs  per record: int32 little-endian dimension, then that many uint8
 *   .npy    NumPy format 1.0/2.0/3.0, a 2-D C-order array of '<f4', '<f8', '|u1' or '<i4'
 *   IDX     the MNIST format: big-endian header, uint8 or float32 data; the first
 *           dimension counts the records, the others flattened make the vector
 *
 * each gzip-compressed or not (told by the gzip magic, not the name). Every error
 * names the file and, once the header is read, the record (numbered from 0). */
#ifndef NVF_TOOL_VECFILE_H
#define NVF_TOOL_VECFILE_H

#include <stddef.h>
#include <stdint.h>

/** Formats; VF_AUTO chooses by the file's name. */
enum vecfile_format {
	VF_AUTO = 0,
	VF_FVECS,
	VF_BVECS,
	VF_NPY,
	VF_IDX,
};

/** Largest dimension a file may declare. Well above any collection's (NVF_MAX_DIM):
 * this only stops garbage from being taken for a header. */
#define VECFILE_MAX_DIM (1u << 24)

/** Room for an error message. */
#define VECFILE_ERRLEN 512

typedef struct vecfile vecfile;

/** "fvecs", "bvecs", "npy" or "idx" to its enum vecfile_format; -1 if unknown. */
int vecfile_format_parse(const char *name);

/** The name of a format ("auto" for VF_AUTO). */
const char *vecfile_format_name(int format);

/** The format a file's name implies (.fvecs, .bvecs, .npy, .idx, *-ubyte, each
 * optionally followed by .gz), or VF_AUTO if it implies none. */
int vecfile_format_guess(const char *path);

/**
 * Open a file and read its header (for .fvecs and .bvecs: the first record's
 * dimension, which every record must then have).
 * @param[out] out  the reader, closed with vecfile_close()
 * @param format    an enum vecfile_format; VF_AUTO guesses from the name
 * @param err       receives the message on failure (VECFILE_ERRLEN bytes)
 * @return 0, or -1 with the message in err.
 */
int vecfile_open(vecfile **out, const char *path, int format, char *err);

/** Components per record; 0 for an empty .fvecs/.bvecs file. */
size_t vecfile_dim(const vecfile *vf);

/** Records the header declares (.npy, IDX), or -1 where the format has no count. */
int64_t vecfile_count(const vecfile *vf);

/** The format being read. */
int vecfile_format(const vecfile *vf);

/**
 * Read the next record into out (vecfile_dim() floats).
 * @return 1 for a record, 0 at the end of the file, -1 with the message in err
 *         (after an error the reader is stuck: every later call fails the same way).
 */
int vecfile_read(vecfile *vf, float *out, char *err);

/** Number of the record the next vecfile_read() returns (records read so far). */
uint64_t vecfile_record(const vecfile *vf);

/** Close; accepts NULL. */
void vecfile_close(vecfile *vf);

/**
 * Read a whole file (or its first `limit` records; 0 = all) into one array.
 * @param[out] n, dim  records read and components per record
 * @return the records, row-major, to free(); NULL with the message in err.
 */
float *vecfile_load(const char *path, int format, size_t limit, size_t *n, size_t *dim, char *err);

#endif /* NVF_TOOL_VECFILE_H */
