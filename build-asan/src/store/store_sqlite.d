build-asan/src/store/store_sqlite.o: src/store/store_sqlite.c \
 src/store/store_int.h src/store/store.h src/core/arena.h src/core/err.h \
 src/store/model.h src/core/log.h src/core/text.h
src/store/store_int.h:
src/store/store.h:
src/core/arena.h:
src/core/err.h:
src/store/model.h:
src/core/log.h:
src/core/text.h:
