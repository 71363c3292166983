build-asan/src/auth/auth.o: src/auth/auth.c src/auth/auth.h \
 src/core/arena.h src/core/err.h src/store/model.h src/store/store.h \
 src/core/log.h src/core/text.h
src/auth/auth.h:
src/core/arena.h:
src/core/err.h:
src/store/model.h:
src/store/store.h:
src/core/log.h:
src/core/text.h:
