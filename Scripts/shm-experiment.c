// Issue 15 design check: 40 MB (10 M floats) through libzmq PUB→SUB over tcp://127.0.0.1 and ipc://, against a
// copy into and out of a /dev/shm mapping (what the same-host parameter ring, ParameterSlotRing.swift, does).
// Not part of the build. Run:  gcc -O2 -o /tmp/shm-experiment Scripts/shm-experiment.c -lzmq && /tmp/shm-experiment
// Writes and removes /dev/shm/shm4exp and /tmp/shm4exp-sock. Results: docs/performance.md, "Same-host broadcast".
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <stdint.h>
#include <malloc.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}
#define N (10*1000*1000)
#define B (N*4)
static void zmqrun(const char*ep,char*buf){
  void*ctx=zmq_ctx_new();void*pub=zmq_socket(ctx,ZMQ_PUB),*sub=zmq_socket(ctx,ZMQ_SUB);
  zmq_bind(pub,ep);zmq_setsockopt(sub,ZMQ_SUBSCRIBE,"",0);zmq_connect(sub,ep);usleep(200000);
  double best=1e9;char*out=malloc(B);
  for(int r=0;r<15;r++){zmq_msg_t m;double t0=now();zmq_msg_init_size(&m,B);memcpy(zmq_msg_data(&m),buf,B);
    zmq_msg_send(&m,pub,0);zmq_msg_t g;zmq_msg_init(&g);zmq_msg_recv(&g,sub,0);memcpy(out,zmq_msg_data(&g),B);zmq_msg_close(&g);
    double d=now()-t0;if(d<best)best=d;usleep(50000);}
  printf("%-28s %6.2f ms (copy-in + send + recv + copy-out)\n",ep,best);
  zmq_close(pub);zmq_close(sub);zmq_ctx_term(ctx);free(out);
}
int main(){
  // As WireMemory.configureForLargeMessages: big blocks stay in the heap (no page faults per 40 MB message).
  mallopt(M_MMAP_THRESHOLD,1<<30);mallopt(M_TRIM_THRESHOLD,1<<30);mallopt(M_ARENA_MAX,1);
  char*buf=malloc(B);for(int i=0;i<N;i++)((float*)buf)[i]=i*1e-6f;
  zmqrun("tcp://127.0.0.1:45991",buf);zmqrun("ipc:///tmp/shm4exp-sock",buf);
  int fd=open("/dev/shm/shm4exp",O_CREAT|O_EXCL|O_RDWR,0600);ftruncate(fd,B);
  char*map=mmap(0,B,PROT_READ|PROT_WRITE,MAP_SHARED,fd,0);close(fd);unlink("/dev/shm/shm4exp");
  char*out=malloc(B);double bw=1e9,br=1e9,bfirst=0;
  for(int r=0;r<15;r++){double t0=now();memcpy(map,buf,B);double t1=now();memcpy(out,map,B);double t2=now();
    if(r==0)bfirst=t2-t0; if(t1-t0<bw)bw=t1-t0;if(t2-t1<br)br=t2-t1;}
  printf("/dev/shm mmap: write %.2f ms, read %.2f ms, sum %.2f ms (first round incl. page faults %.2f)\n",bw,br,bw+br,bfirst);
  // fresh destination each time (page faults of a new [Float])
  double bn=1e9;volatile char sink=0;for(int r=0;r<5;r++){char*o=malloc(B);double t0=now();memcpy(o,map,B);double d=now()-t0;sink+=o[r*1000];free(o);if(d<bn)bn=d;}
  printf("/dev/shm read into a fresh malloc: %.2f ms\n",bn);
  // checksum pass: 8 lanes fletcher-64
  uint64_t a[8]={0},b[8]={0};double bc=1e9;for(int r=0;r<5;r++){double t0=now();const uint32_t*w=(const uint32_t*)map;
    for(int i=0;i<N;i+=8)for(int k=0;k<8;k++){a[k]+=w[i+k];b[k]+=a[k];}double d=now()-t0;if(d<bc)bc=d;}
  printf("checksum pass (8-lane fletcher64): %.2f ms (%llu)\n",bc,(unsigned long long)(a[0]^b[7]));
  munmap(map,B);return 0;}
