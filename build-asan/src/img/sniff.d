build-asan/src/img/sniff.o: src/img/sniff.c src/img/sniff.h
src/img/sniff.h:
