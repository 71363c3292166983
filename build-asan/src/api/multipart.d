build-asan/src/api/multipart.o: src/api/multipart.c src/api/multipart.h \
 src/core/err.h src/core/text.h
src/api/multipart.h:
src/core/err.h:
src/core/text.h:
