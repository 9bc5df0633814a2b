# motscale: build, demo, tests and benchmarks. `make demo`, `make check` and `make bench`
# first run scripts/bootstrap, which installs any missing Debian package (check and
# bench also PyTorch, for the reference in bench/torch_ref.py).
#
#   make            the motscale binary (build/motscale)
#   make demo       build, then the demo experiment, compare and report
#   make check      build, then every test; SANITIZE=1 builds with ASan+UBSan
#   make bench      benchmarks (ratios measured side by side, medians)

CC      := mpicc
PKGS    := hdf5-openmpi gsl inih openblas
SANFLAGS:= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN     := $(if $(SANITIZE),$(SANFLAGS))
BUILD   := build$(if $(SANITIZE),-san,)
# -fno-math-errno lets sqrt vectorise, -fno-trapping-math lets the clamps and the
# float-to-int step of kernel_exp be if-converted so exp loops (SwiGLU, softmax,
# cross-entropy) vectorise (without it GCC 12 keeps them scalar: "control flow in
# loop"), and the "cheap" cost model lets loops with an epilogue (AdamW, the norms)
# vectorise at -O2; none changes a result (no -ffast-math: no reassociation, and
# nothing here reads the floating-point exception flags)
CFLAGS  ?= -std=c11 -Wall -Wextra -Werror -O2 -g -march=native -fno-math-errno -fno-trapping-math -fvect-cost-model=cheap
CFLAGS  += -D_GNU_SOURCE -Iinclude $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(SAN)
# dependency files: touching any header (public or private) rebuilds exactly its users
DEPFLAGS := -MMD -MP
GITREV  := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
CFLAGS  += -DMOTSCALE_GIT_COMMIT='"$(GITREV)"'
# GSL's own CBLAS is replaced by OpenBLAS: one BLAS in the process.
LDLIBS  := -lhdf5 -lgsl -linih -lopenblas -lscalapack-openmpi -lm
LDFLAGS := $(shell pkg-config --libs-only-L $(PKGS) 2>/dev/null) $(SAN)

LIBSRC  := $(wildcard src/tensor/*.c src/model/*.c src/parallel/*.c src/train/*.c \
                      src/data/*.c src/io/*.c src/cli/*.c analysis/*.c)
LIBSRC  := $(filter-out src/cli/main.c,$(LIBSRC))
OBJ32   := $(LIBSRC:%.c=$(BUILD)/f32/%.o)
OBJ64   := $(LIBSRC:%.c=$(BUILD)/f64/%.o)
UNIT32  := $(wildcard tests/unit/test_*.c)
UNIT64  := $(wildcard tests/unit/f64_*.c)
UNITMPI := $(wildcard tests/unit/mpi_*.c)
BENCHSRC:= $(wildcard bench/bench_*.c)
# mpi_* binaries are launched under mpirun by tests/e2e scripts, not run directly
TESTBIN := $(UNIT32:tests/unit/%.c=$(BUILD)/tests/%) $(UNIT64:tests/unit/%.c=$(BUILD)/tests/%) \
           $(UNITMPI:tests/unit/%.c=$(BUILD)/tests/%)
BENCHBIN:= $(BENCHSRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all demo check bench clean bootstrap tests docs-keys
all: $(BUILD)/motscale

bootstrap:
	@sh scripts/bootstrap

$(BUILD)/f32/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@
$(BUILD)/f64/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -DMOTSCALE_DOUBLE -c $< -o $@

# the tolerance table of tests/tolerances.env as C defines
$(BUILD)/tests/tolerances.h: tests/tolerances.env Makefile
	@mkdir -p $(dir $@)
	sed -n 's/^\([A-Z_0-9]*\)=\([^ ]*\).*/#define \1 \2/p' $< >$@

$(BUILD)/libmotscale.a: $(OBJ32)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libmotscale64.a: $(OBJ64)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/motscale: $(BUILD)/f32/src/cli/main.o $(BUILD)/libmotscale.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	@ln -sf $(notdir $@) $(BUILD)/motscale-bin 2>/dev/null || true

TESTINC := -Itests/unit -I$(BUILD)/tests
$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/tests/tolerances.h $(BUILD)/libmotscale.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -MT $@ -MF $@.d $(TESTINC) -o $@ $< $(BUILD)/libmotscale.a $(LDFLAGS) $(LDLIBS) -lcmocka
$(BUILD)/tests/mpi_%: tests/unit/mpi_%.c $(BUILD)/tests/tolerances.h $(BUILD)/libmotscale.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -MT $@ -MF $@.d $(TESTINC) -o $@ $< $(BUILD)/libmotscale.a $(LDFLAGS) $(LDLIBS) -lcmocka
$(BUILD)/tests/f64_%: tests/unit/f64_%.c $(BUILD)/tests/tolerances.h $(BUILD)/libmotscale64.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -MT $@ -MF $@.d -DMOTSCALE_DOUBLE $(TESTINC) -o $@ $< $(BUILD)/libmotscale64.a $(LDFLAGS) $(LDLIBS) -lcmocka
$(BUILD)/bench/bench_%: bench/bench_%.c $(BUILD)/libmotscale.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -MT $@ -MF $@.d -o $@ $< $(BUILD)/libmotscale.a $(LDFLAGS) $(LDLIBS)

# the benchmarks too: tests/e2e/bench_quick.sh runs them in their quick form
tests: $(BUILD)/motscale $(TESTBIN) $(BENCHBIN)

check:
	@MOTSCALE_WITH_TORCH=1 sh scripts/bootstrap
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) sh tests/run

demo: bootstrap
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh jobs/demo

docs-keys: all
	@sh scripts/docs-keys $(BUILD)/motscale

bench:
	@MOTSCALE_WITH_TORCH=1 sh scripts/bootstrap
	@$(MAKE) --no-print-directory all $(BENCHBIN)
	@BUILD=$(BUILD) sh bench/run $(BENCH_ARGS)

clean:
	rm -rf build build-san

-include $(OBJ32:.o=.d) $(OBJ64:.o=.d) $(BUILD)/f32/src/cli/main.d $(TESTBIN:=.d) $(BENCHBIN:=.d)
