build-asan/src/store/store.o: src/store/store.c src/store/store.h \
 src/core/arena.h src/core/err.h src/store/model.h src/core/log.h \
 src/store/store_int.h
src/store/store.h:
src/core/arena.h:
src/core/err.h:
src/store/model.h:
src/core/log.h:
src/store/store_int.h:
