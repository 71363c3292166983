build-asan/src/img/placeholder.o: src/img/placeholder.c \
 src/img/placeholder.h src/core/text.h
src/img/placeholder.h:
src/core/text.h:
