build-asan/src/api/entity.o: src/api/entity.c src/api/api_int.h \
 src/api/api.h src/auth/auth.h src/core/arena.h src/core/err.h \
 src/store/model.h src/store/store.h src/api/msg.h src/core/buf.h \
 src/img/sniff.h
src/api/api_int.h:
src/api/api.h:
src/auth/auth.h:
src/core/arena.h:
src/core/err.h:
src/store/model.h:
src/store/store.h:
src/api/msg.h:
src/core/buf.h:
src/img/sniff.h:
