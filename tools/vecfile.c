/* Vector files, one record at a time: fvecs, bvecs, npy and IDX, gzipped or not.
 *
 * Everything goes through zlib's gz* functions, which read an uncompressed file
 * as it is, so one code path serves both. The gzip magic is looked at only to
 * say "gzip" in messages about broken compressed streams. */
#include "vecfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Element types of the raw records. */
enum elem {
	E_F32LE,
	E_F64LE,
	E_U8,
	E_I32LE,
	E_F32BE,
};

struct vecfile {
	gzFile gz;
	char *path;
	int format;
	bool gzip;
	enum elem elem;
	size_t esize;         /* bytes per component */
	size_t dim;
	int64_t count;        /* records the header declares, -1 if it declares none */
	uint64_t rec;         /* records returned so far */
	bool pending_hdr;     /* fvecs/bvecs: the next record's dimension is already read */
	bool failed;
	unsigned char *buf;   /* one record's raw bytes */
	char errsave[VECFILE_ERRLEN];
};

static const char *const format_names[] = {
	[VF_AUTO] = "auto", [VF_FVECS] = "fvecs", [VF_BVECS] = "bvecs", [VF_NPY] = "npy", [VF_IDX] = "idx",
};

int vecfile_format_parse(const char *name)
{
	for (int f = VF_FVECS; f <= VF_IDX; f++)
		if (strcasecmp(name, format_names[f]) == 0)
			return f;
	return -1;
}

const char *vecfile_format_name(int format)
{
	return format >= VF_AUTO && format <= VF_IDX ? format_names[format] : "?";
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);
	return n >= m && strncasecmp(s + n - m, suffix, m) == 0;
}

int vecfile_format_guess(const char *path)
{
	size_t n = strlen(path);
	if (ends_with(path, n, ".gz"))
		n -= 3;
	if (ends_with(path, n, ".fvecs"))
		return VF_FVECS;
	if (ends_with(path, n, ".bvecs"))
		return VF_BVECS;
	if (ends_with(path, n, ".npy"))
		return VF_NPY;
	/* MNIST's own names end in -idx3-ubyte, -idx1-ubyte; others use .idx. */
	if (ends_with(path, n, ".idx") || ends_with(path, n, "-ubyte"))
		return VF_IDX;
	return VF_AUTO;
}

size_t vecfile_dim(const vecfile *vf)
{
	return vf->dim;
}

int64_t vecfile_count(const vecfile *vf)
{
	return vf->count;
}

int vecfile_format(const vecfile *vf)
{
	return vf->format;
}

uint64_t vecfile_record(const vecfile *vf)
{
	return vf->rec;
}

/* Format "PATH: message" into err and remember it, so that a reader that failed
 * keeps failing the same way. */
__attribute__((format(printf, 3, 4))) static int fail(vecfile *vf, char *err, const char *fmt, ...)
{
	va_list ap;
	/* A long path or message is cut short, which is fine for a message. */
	int n = snprintf(vf->errsave, sizeof(vf->errsave), "%s: ", vf->path);
	if (n >= 0 && (size_t)n < sizeof(vf->errsave)) {
		va_start(ap, fmt);
		vsnprintf(vf->errsave + n, sizeof(vf->errsave) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	vf->failed = true;
	if (err)
		memcpy(err, vf->errsave, strlen(vf->errsave) + 1);
	return -1;
}

/* The zlib error of a short read, or NULL if the read just met the end of the file. */
static const char *gz_problem(vecfile *vf)
{
	int errnum;
	const char *msg = gzerror(vf->gz, &errnum);
	if (errnum == Z_OK)
		return NULL;
	if (errnum == Z_ERRNO)
		return strerror(errno);
	if (!msg || !*msg)
		return "read error";
	/* zlib names the file "<fd:N>: " (gzdopen); our messages name it already. */
	const char *colon = strstr(msg, ": ");
	if (strncmp(msg, "<fd:", 4) == 0 && colon)
		msg = colon + 2;
	return msg;
}

/* Read up to n bytes; *got says how many came. -1 only for an I/O or gzip error
 * (the message from gz_problem()); a short read at the end of the file is 0. */
static int rd(vecfile *vf, void *buf, size_t n, size_t *got)
{
	size_t done = 0;
	while (done < n) {
		size_t want = n - done;
		int r = gzread(vf->gz, (unsigned char *)buf + done, want > (1u << 30) ? (1u << 30) : (unsigned)want);
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return done < n && gz_problem(vf) ? -1 : 0;
}

/* Like rd(), but a short read is an error; what names where in the file. */
static int rd_exact(vecfile *vf, void *buf, size_t n, const char *what, char *err)
{
	size_t got;
	if (rd(vf, buf, n, &got) != 0)
		return fail(vf, err, "%s: %s%s", what, vf->gzip ? "gzip: " : "", gz_problem(vf));
	if (got < n)
		return fail(vf, err, "%s: truncated (got %zu of %zu bytes)", what, got, n);
	return 0;
}

static uint32_t ld_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t ld_be32(const unsigned char *p)
{
	return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

static uint64_t ld_le64(const unsigned char *p)
{
	return (uint64_t)ld_le32(p) | (uint64_t)ld_le32(p + 4) << 32;
}

static float f32_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static void convert(const vecfile *vf, float *out)
{
	const unsigned char *p = vf->buf;
	size_t n = vf->dim;
	switch (vf->elem) {
	case E_F32LE:
		for (size_t i = 0; i < n; i++)
			out[i] = f32_of(ld_le32(p + 4 * i));
		break;
	case E_F32BE:
		for (size_t i = 0; i < n; i++)
			out[i] = f32_of(ld_be32(p + 4 * i));
		break;
	case E_F64LE:
		for (size_t i = 0; i < n; i++) {
			uint64_t u = ld_le64(p + 8 * i);
			double d;
			memcpy(&d, &u, sizeof(d));
			out[i] = (float)d;
		}
		break;
	case E_U8:
		for (size_t i = 0; i < n; i++)
			out[i] = (float)p[i];
		break;
	case E_I32LE:
		for (size_t i = 0; i < n; i++)
			out[i] = (float)(int32_t)ld_le32(p + 4 * i);
		break;
	}
}

/* ---- fvecs and bvecs ---- */

/* A record's leading dimension field. */
static int xvecs_dim(vecfile *vf, const unsigned char *b, char *err)
{
	int32_t d = (int32_t)ld_le32(b);
	if (vf->dim == 0) {
		/* The first record's dimension sets everyone's. */
		if (d <= 0)
			return fail(vf, err, "record %llu: dimension %d (must be positive; is this a .%s file?)",
				    (unsigned long long)vf->rec, d, vecfile_format_name(vf->format));
		if ((uint32_t)d > VECFILE_MAX_DIM)
			return fail(vf, err, "record %llu: dimension %d is absurd (more than %u; is this a .%s file?)",
				    (unsigned long long)vf->rec, d, VECFILE_MAX_DIM, vecfile_format_name(vf->format));
		vf->dim = (size_t)d;
		return 0;
	}
	if (d <= 0 || (size_t)d != vf->dim)
		return fail(vf, err, "record %llu: dimension %d, expected %zu (the first record's)",
			    (unsigned long long)vf->rec, d, vf->dim);
	return 0;
}

static int xvecs_open(vecfile *vf, char *err)
{
	unsigned char b[4];
	size_t got;
	vf->esize = vf->format == VF_FVECS ? 4 : 1;
	vf->elem = vf->format == VF_FVECS ? E_F32LE : E_U8;
	if (rd(vf, b, sizeof(b), &got) != 0)
		return fail(vf, err, "record 0: %s%s", vf->gzip ? "gzip: " : "", gz_problem(vf));
	if (got == 0)
		return 0; /* an empty file: no records, no dimension */
	if (got < sizeof(b))
		return fail(vf, err, "record 0: truncated (got %zu of 4 bytes of its dimension)", got);
	if (xvecs_dim(vf, b, err) != 0)
		return -1;
	vf->pending_hdr = true;
	return 0;
}

static int xvecs_read(vecfile *vf, float *out, char *err)
{
	size_t rec_bytes = 4 + vf->dim * vf->esize, got;
	if (vf->dim == 0)
		return 0;
	if (!vf->pending_hdr) {
		unsigned char b[4];
		if (rd(vf, b, sizeof(b), &got) != 0)
			return fail(vf, err, "record %llu: %s%s", (unsigned long long)vf->rec, vf->gzip ? "gzip: " : "",
				    gz_problem(vf));
		if (got == 0)
			return 0;
		if (got < sizeof(b))
			return fail(vf, err, "record %llu: truncated (got %zu of %zu bytes)", (unsigned long long)vf->rec,
				    got, rec_bytes);
		if (xvecs_dim(vf, b, err) != 0)
			return -1;
	}
	vf->pending_hdr = false;
	size_t need = vf->dim * vf->esize;
	if (rd(vf, vf->buf, need, &got) != 0)
		return fail(vf, err, "record %llu: %s%s", (unsigned long long)vf->rec, vf->gzip ? "gzip: " : "",
			    gz_problem(vf));
	if (got < need)
		return fail(vf, err, "record %llu: truncated (got %zu of %zu bytes)", (unsigned long long)vf->rec,
			    4 + got, rec_bytes);
	convert(vf, out);
	vf->rec++;
	return 1;
}

/* ---- npy ---- */

/* A cursor over the header, a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (10, 128), } */
typedef struct cursor {
	const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static bool eat(cursor *c, char ch)
{
	skip_ws(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

/* A quoted string (no escapes: none of the keys or dtypes we accept has any). */
static bool parse_str(cursor *c, char *out, size_t outlen)
{
	skip_ws(c);
	if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
		return false;
	char q = *c->p++;
	size_t n = 0;
	while (c->p < c->end && *c->p != q) {
		if (*c->p == '\\' || n + 1 >= outlen)
			return false;
		out[n++] = *c->p++;
	}
	if (c->p >= c->end)
		return false;
	c->p++;
	out[n] = '\0';
	return true;
}

static bool parse_word(cursor *c, const char *word)
{
	size_t n = strlen(word);
	skip_ws(c);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return false;
	c->p += n;
	return true;
}

#define NPY_MAX_NDIM 32

/* A tuple of non-negative integers: (), (5,), (10, 128). */
static bool parse_shape(cursor *c, uint64_t *shape, int *ndim)
{
	*ndim = 0;
	if (!eat(c, '('))
		return false;
	for (;;) {
		if (eat(c, ')'))
			return true;
		skip_ws(c);
		if (c->p >= c->end || *c->p < '0' || *c->p > '9' || *ndim == NPY_MAX_NDIM)
			return false;
		uint64_t v = 0;
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
			unsigned d = (unsigned)(*c->p++ - '0');
			if (v > (UINT64_MAX - d) / 10)
				return false;
			v = v * 10 + d;
		}
		if (c->p < c->end && *c->p == 'L') /* written by Python 2 */
			c->p++;
		shape[(*ndim)++] = v;
		if (!eat(c, ',')) {
			if (eat(c, ')'))
				return true;
			return false;
		}
	}
}

static void shape_str(char *out, size_t outlen, const uint64_t *shape, int ndim)
{
	size_t n = (size_t)snprintf(out, outlen, "(");
	for (int i = 0; i < ndim && n < outlen; i++)
		n += (size_t)snprintf(out + n, outlen - n, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
	if (n < outlen)
		snprintf(out + n, outlen - n, ndim == 1 ? ",)" : ")");
}

static int npy_open(vecfile *vf, char *err)
{
	unsigned char pre[12];
	if (rd_exact(vf, pre, 10, "npy header", err) != 0)
		return -1;
	if (memcmp(pre, "\x93NUMPY", 6) != 0)
		return fail(vf, err, "not a .npy file (no \\x93NUMPY magic)");
	unsigned major = pre[6], minor = pre[7];
	uint32_t hlen;
	if (major == 1) {
		hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
	} else if (major == 2 || major == 3) {
		if (rd_exact(vf, pre + 10, 2, "npy header", err) != 0)
			return -1;
		hlen = ld_le32(pre + 8);
	} else {
		return fail(vf, err, "npy format version %u.%u not supported (1.0, 2.0 and 3.0 are)", major, minor);
	}
	/* numpy itself refuses headers past a few kilobytes without a special flag. */
	if (hlen > (1u << 20))
		return fail(vf, err, "bad npy header: length %u is absurd", hlen);
	char *h = malloc(hlen + 1u);
	if (!h)
		return fail(vf, err, "out of memory");
	int rc = -1;
	if (rd_exact(vf, h, hlen, "npy header", err) != 0)
		goto out;
	h[hlen] = '\0';

	char descr[32] = "", key[32];
	int fortran = -1, ndim = -1;
	uint64_t shape[NPY_MAX_NDIM];
	cursor c = {h, h + hlen};
	if (!eat(&c, '{')) {
		fail(vf, err, "bad npy header: not a dict: %.60s", h);
		goto out;
	}
	while (!eat(&c, '}')) {
		if (!parse_str(&c, key, sizeof(key)) || !eat(&c, ':')) {
			fail(vf, err, "bad npy header near \"%.30s\"", c.p);
			goto out;
		}
		bool ok;
		if (strcmp(key, "descr") == 0) {
			ok = parse_str(&c, descr, sizeof(descr));
		} else if (strcmp(key, "fortran_order") == 0) {
			ok = true;
			if (parse_word(&c, "True"))
				fortran = 1;
			else if (parse_word(&c, "False"))
				fortran = 0;
			else
				ok = false;
		} else if (strcmp(key, "shape") == 0) {
			ok = parse_shape(&c, shape, &ndim);
		} else {
			fail(vf, err, "bad npy header: unexpected key '%s'", key);
			goto out;
		}
		if (!ok) {
			fail(vf, err, "bad npy header: bad value for '%s' near \"%.30s\"", key, c.p);
			goto out;
		}
		if (!eat(&c, ',')) {
			if (eat(&c, '}'))
				break;
			fail(vf, err, "bad npy header near \"%.30s\"", c.p);
			goto out;
		}
	}
	if (!descr[0] || fortran < 0 || ndim < 0) {
		fail(vf, err, "bad npy header: no '%s'", !descr[0] ? "descr" : fortran < 0 ? "fortran_order" : "shape");
		goto out;
	}
	if (strcmp(descr, "<f4") == 0) {
		vf->elem = E_F32LE;
		vf->esize = 4;
	} else if (strcmp(descr, "<f8") == 0) {
		vf->elem = E_F64LE;
		vf->esize = 8;
	} else if (strcmp(descr, "|u1") == 0 || strcmp(descr, "<u1") == 0) {
		vf->elem = E_U8;
		vf->esize = 1;
	} else if (strcmp(descr, "<i4") == 0) {
		vf->elem = E_I32LE;
		vf->esize = 4;
	} else {
		fail(vf, err, "npy dtype '%s' not supported (use '<f4', '<f8', '|u1' or '<i4')", descr);
		goto out;
	}
	if (fortran) {
		fail(vf, err, "Fortran-order npy arrays are not supported (save np.ascontiguousarray(a))");
		goto out;
	}
	if (ndim != 2) {
		char s[96];
		shape_str(s, sizeof(s), shape, ndim);
		fail(vf, err, "npy shape %s: need a 2-D array (records, dimension)", s);
		goto out;
	}
	if (shape[1] == 0 || shape[1] > VECFILE_MAX_DIM || shape[0] > INT64_MAX) {
		fail(vf, err, "npy shape (%llu, %llu): %s", (unsigned long long)shape[0], (unsigned long long)shape[1],
		     shape[1] == 0 ? "vectors of dimension 0" : "absurd size");
		goto out;
	}
	vf->count = (int64_t)shape[0];
	vf->dim = (size_t)shape[1];
	rc = 0;
out:
	free(h);
	return rc;
}

/* ---- IDX ---- */

static int idx_open(vecfile *vf, char *err)
{
	unsigned char m[4], d[4];
	if (rd_exact(vf, m, 4, "IDX header", err) != 0)
		return -1;
	if (m[0] != 0 || m[1] != 0 || m[3] == 0)
		return fail(vf, err, "not an IDX file (magic %02x %02x %02x %02x)", m[0], m[1], m[2], m[3]);
	if (m[2] == 0x08) {
		vf->elem = E_U8;
		vf->esize = 1;
	} else if (m[2] == 0x0D) {
		vf->elem = E_F32BE;
		vf->esize = 4;
	} else {
		static const struct {
			unsigned char t;
			const char *name;
		} other[] = {{0x09, "int8"}, {0x0B, "int16"}, {0x0C, "int32"}, {0x0E, "float64"}};
		const char *name = "unknown";
		for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
			if (other[i].t == m[2])
				name = other[i].name;
		return fail(vf, err, "IDX data type 0x%02X (%s) not supported (0x08 uint8 and 0x0D float32 are)", m[2],
			    name);
	}
	unsigned nd = m[3];
	if (nd < 2)
		return fail(vf, err, "1-dimensional IDX file (labels?): need records of vectors, 2 or more dimensions");
	uint64_t dim = 1;
	for (unsigned i = 0; i < nd; i++) {
		if (rd_exact(vf, d, 4, "IDX header", err) != 0)
			return -1;
		uint32_t n = ld_be32(d);
		if (i == 0) {
			vf->count = n;
			continue;
		}
		dim *= n;
		if (dim > VECFILE_MAX_DIM)
			return fail(vf, err, "IDX header: records of more than %u components are absurd", VECFILE_MAX_DIM);
	}
	if (dim == 0)
		return fail(vf, err, "IDX header: vectors of dimension 0");
	vf->dim = (size_t)dim;
	return 0;
}

/* npy and IDX: fixed-size records after the header, as many as it declares. */
static int counted_read(vecfile *vf, float *out, char *err)
{
	size_t need = vf->dim * vf->esize, got;
	if ((int64_t)vf->rec == vf->count) {
		unsigned char b;
		if (rd(vf, &b, 1, &got) != 0)
			return fail(vf, err, "after the last record: %s%s", vf->gzip ? "gzip: " : "", gz_problem(vf));
		if (got)
			return fail(vf, err, "data after the %lld records the header declares", (long long)vf->count);
		return 0;
	}
	if (rd(vf, vf->buf, need, &got) != 0)
		return fail(vf, err, "record %llu: %s%s", (unsigned long long)vf->rec, vf->gzip ? "gzip: " : "",
			    gz_problem(vf));
	if (got < need)
		return fail(vf, err, "record %llu: truncated (got %zu of %zu bytes; the header declares %lld records)",
			    (unsigned long long)vf->rec, got, need, (long long)vf->count);
	convert(vf, out);
	vf->rec++;
	return 1;
}

/* ---- common ---- */

int vecfile_open(vecfile **out, const char *path, int format, char *err)
{
	vecfile *vf = calloc(1, sizeof(*vf));
	if (!vf || !(vf->path = strdup(path))) {
		free(vf);
		snprintf(err, VECFILE_ERRLEN, "%s: out of memory", path);
		return -1;
	}
	vf->count = -1;
	vf->format = format == VF_AUTO ? vecfile_format_guess(path) : format;
	int rc = -1;
	int fd = -1;
	if (vf->format == VF_AUTO) {
		fail(vf, err, "cannot tell the format from the name (use --format fvecs|bvecs|npy|idx)");
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fail(vf, err, "%s", strerror(errno));
		goto out;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
		fail(vf, err, "%s", S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
		goto out;
	}
	unsigned char magic[2];
	vf->gzip = pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
	if (!(vf->gz = gzdopen(fd, "rb"))) {
		fail(vf, err, "%s", errno ? strerror(errno) : "out of memory");
		goto out;
	}
	fd = -1; /* the gzFile owns it now */
	gzbuffer(vf->gz, 256u << 10);
	switch (vf->format) {
	case VF_FVECS:
	case VF_BVECS:
		rc = xvecs_open(vf, err);
		break;
	case VF_NPY:
		rc = npy_open(vf, err);
		break;
	case VF_IDX:
		rc = idx_open(vf, err);
		break;
	default:
		fail(vf, err, "unknown format %d", vf->format);
		break;
	}
	if (rc == 0 && vf->dim && !(vf->buf = malloc(vf->dim * vf->esize)))
		rc = fail(vf, err, "out of memory for records of %zu components", vf->dim);
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0) {
		vecfile_close(vf);
		return -1;
	}
	*out = vf;
	return 0;
}

int vecfile_read(vecfile *vf, float *out, char *err)
{
	if (vf->failed) {
		memcpy(err, vf->errsave, strlen(vf->errsave) + 1);
		return -1;
	}
	if (vf->format == VF_FVECS || vf->format == VF_BVECS)
		return xvecs_read(vf, out, err);
	return counted_read(vf, out, err);
}

void vecfile_close(vecfile *vf)
{
	if (!vf)
		return;
	if (vf->gz)
		gzclose_r(vf->gz);
	free(vf->buf);
	free(vf->path);
	free(vf);
}

float *vecfile_load(const char *path, int format, size_t limit, size_t *n, size_t *dim, char *err)
{
	vecfile *vf;
	if (vecfile_open(&vf, path, format, err) != 0)
		return NULL;
	size_t d = vecfile_dim(vf), k = 0;
	/* 1024 records to start with, but no more than 4 Mi floats: the dimension comes
	 * from the file's header (up to VECFILE_MAX_DIM), and a file of a few bytes
	 * claiming a large one must not take 1024 times that before its first record. */
	size_t cap = d > (1u << 22) / 1024 ? ((1u << 22) / d ? (1u << 22) / d : 1) : 1024;
	float *v = malloc(cap * (d ? d : 1) * sizeof(float));
	int r = v ? 1 : -1;
	if (!v)
		snprintf(err, VECFILE_ERRLEN, "%s: out of memory", path);
	while (v && (limit == 0 || k < limit) && (r = vecfile_read(vf, v + k * d, err)) == 1) {
		if (++k < cap)
			continue;
		float *bigger = realloc(v, 2 * cap * d * sizeof(float));
		if (!bigger) {
			snprintf(err, VECFILE_ERRLEN, "%s: out of memory after %zu records", path, k);
			r = -1;
			break;
		}
		v = bigger;
		cap *= 2;
	}
	vecfile_close(vf);
	if (r < 0) {
		free(v);
		return NULL;
	}
	*n = k;
	*dim = d;
	return v;
}
