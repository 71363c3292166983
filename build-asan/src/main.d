build-asan/src/main.o: src/main.c src/api/api.h src/auth/auth.h \
 src/core/arena.h src/core/err.h src/store/model.h src/store/store.h \
 src/auth/auth.h src/core/log.h src/core/text.h src/http/http.h \
 src/api/api.h src/store/store.h
src/api/api.h:
src/auth/auth.h:
src/core/arena.h:
src/core/err.h:
src/store/model.h:
src/store/store.h:
src/auth/auth.h:
src/core/log.h:
src/core/text.h:
src/http/http.h:
src/api/api.h:
src/store/store.h:
