build-asan/src/store/model.o: src/store/model.c src/store/model.h \
 src/core/text.h
src/store/model.h:
src/core/text.h:
