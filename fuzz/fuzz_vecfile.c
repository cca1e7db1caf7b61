/* Fuzz target: the vector file readers (tools/vecfile.h) and the importer
 * (tools/importer.h). The input is written once to a file and read as .fvecs,
 * .bvecs, .npy and IDX (each also gzip-compressed, which the readers tell by the
 * magic), then imported into a small collection as JSON lines and as each vector
 * format, in a transaction that is aborted. There is no CSV reader to fuzz. */
#include "fuzz.h"

#include <nvf.h>

#include "importer.h"
#include "vecfile.h"

/* Records read per format; dimensions beyond this are opened but not read (the
 * reader's allocation is the caller's, and a 2^24 dimension is a 64 MiB row). */
#define MAX_RECORDS 64
#define MAX_READ_DIM (1u << 16)

static nvf_db *db;
static nvf_info info;
static char in_path[512];

static void setup(void)
{
	char path[512];
	fuzz_dir("vecfile");
	fuzz_path(in_path, "input");
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = 4;
	co.durability = NVF_DURABILITY_NOSYNC;
	co.map_size = 64u << 20;
	FUZZ_CHECK(nvf_db_create(&db, fuzz_path(path, "import.nvf"), &co));
	FUZZ_CHECK(nvf_db_info(db, NULL, &info));
}

static void read_all(int format)
{
	char err[VECFILE_ERRLEN];
	vecfile *vf;
	if (vecfile_open(&vf, in_path, format, err) != 0)
		return;
	size_t dim = vecfile_dim(vf);
	(void)vecfile_count(vf);
	(void)vecfile_format(vf);
	if (dim <= MAX_READ_DIM) {
		float *row = malloc((dim ? dim : 1) * sizeof *row);
		if (!row)
			abort();
		for (int i = 0; i < MAX_RECORDS && vecfile_read(vf, row, err) == 1; i++)
			(void)vecfile_record(vf);
		free(row);
	}
	vecfile_close(vf);
}

static void import(int format, const char *label)
{
	char err[IMPORT_ERRLEN];
	import_result res;
	nvf_txn *txn;
	FUZZ_CHECK(nvf_txn_begin(&txn, db, 0));
	(void)import_file(db, txn, &info, in_path, label, format, 16, NULL, NULL, &res, err);
	nvf_txn_abort(txn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!db)
		setup();
	if (fuzz_write(in_path, data, size) != 0)
		abort();
	static const int formats[] = {VF_FVECS, VF_BVECS, VF_NPY, VF_IDX};
	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
		read_all(formats[i]);
	import(IMPORT_JSONL, "input.jsonl");
	/* The vector formats through the importer too (a dimension other than the
	 * collection's 4 is refused there). */
	import(VF_FVECS, "input.fvecs");
	import(VF_NPY, "input.npy");
	import(VF_IDX, "input.idx");
	return 0;
}
