build-asan/src/api/msg.o: src/api/msg.c src/api/msg.h src/core/arena.h \
 src/core/buf.h src/core/err.h
src/api/msg.h:
src/core/arena.h:
src/core/buf.h:
src/core/err.h:
