// C harness for the training-attention kernels (Scripts/bench-attention.sh builds it): links two copies of
// kernels.c, "old" (a git revision) and "new" (the working tree), and
//   1. checks that new equals old bit for bit (out, att rows, dqkv writing and accumulating) at every instruction-set
//      level, on awkward shapes (T not a multiple of 16, head dims 4/20/32/48, sequences shorter than T, length 1);
//   The layer runs through bfk_attention_forward_pairs / backward_pairs where a copy has them (else pair by pair).
//   2. times one layer of small (B = 32, T = 128, C = 256, H = 8: 256 (sequence, head) pairs) old/new alternating,
//      CPU time, min of N: "cold" = every pair once (each pair's data last touched a layer ago, as in the model),
//      "hot" = one pair 256 times (its data in L1/L2).
// Usage: harness N [check] | harness N cold f|b (new only, for perf record) | harness 0 prof nf|nb|of|ob (one pair).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
typedef void (*fwd_t)(float*, long, float*, long, const float*, const float*, const float*, long, long, long, float, float*);
typedef void (*bwd_t)(int, float*, float*, float*, long, const float*, long, const float*, const float*, const float*, const float*, long, long, long, float, float*);
void old_set_isa(int); void new_set_isa(int); int old_isa(void); int new_isa(void);
void old_fwd(float*, long, float*, long, const float*, const float*, const float*, long, long, long, float, float*);
void new_fwd(float*, long, float*, long, const float*, const float*, const float*, long, long, long, float, float*);
void old_bwd(int, float*, float*, float*, long, const float*, long, const float*, const float*, const float*, const float*, long, long, long, float, float*);
void new_bwd(int, float*, float*, float*, long, const float*, long, const float*, const float*, const float*, const float*, long, long, long, float, float*);
static double cpu(void){ struct timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID,&ts); return ts.tv_sec+1e-9*ts.tv_nsec; }
static unsigned long long rs = 88172645463325252ull;
static float rnd(void){ rs ^= rs<<13; rs ^= rs>>7; rs ^= rs<<17; return ((rs>>40)/(float)(1<<24))*2-1; }
void old_layer_fwd(float*, float*, const float*, const long*, long, long, long, long, float*);
void new_layer_fwd(float*, float*, const float*, const long*, long, long, long, long, float*);
void old_layer_bwd(int, float*, const float*, const float*, const float*, const long*, long, long, long, long, float*);
void new_layer_bwd(int, float*, const float*, const float*, const float*, const long*, long, long, long, long, float*);
static void layer_fwd(fwd_t f, float *out, float *att, const float *qkv, const long *lens, long B, long T, long C, long H, float *scr){
  if (f == old_fwd) { old_layer_fwd(out, att, qkv, lens, B, T, C, H, scr); return; }
  if (f == new_fwd) { new_layer_fwd(out, att, qkv, lens, B, T, C, H, scr); return; }
  long hd=C/H, c3=3*C; float scale=1/sqrtf((float)hd);
  for(long p=0;p<B*H;p++){ long b=p/H,h=p%H; const float *base=qkv+b*T*c3+h*hd;
    f(out+b*T*C+h*hd, C, att+p*T*T, T, base, base+C, base+2*C, c3, lens[b], hd, scale, scr); }
}
static void layer_bwd(bwd_t f, int acc, float *dqkv, const float *dout, const float *qkv, const float *att, const long *lens, long B, long T, long C, long H, float *scr){
  if (f == old_bwd) { old_layer_bwd(acc, dqkv, dout, qkv, att, lens, B, T, C, H, scr); return; }
  if (f == new_bwd) { new_layer_bwd(acc, dqkv, dout, qkv, att, lens, B, T, C, H, scr); return; }
  long hd=C/H, c3=3*C; float scale=1/sqrtf((float)hd);
  for(long p=0;p<B*H;p++){ long b=p/H,h=p%H; const float *base=qkv+b*T*c3+h*hd; float *db=dqkv+b*T*c3+h*hd;
    f(acc, db, db+C, db+2*C, c3, dout+b*T*C+h*hd, C, base, base+C, base+2*C, att+p*T*T, T, lens[b], hd, scale, scr); }
}
static int cmp(const char *what, const float *a, const float *b, long n){
  long bad=0; float md=0; for(long i=0;i<n;i++){ unsigned x,y; memcpy(&x,a+i,4); memcpy(&y,b+i,4); if(x!=y){ bad++; float d=fabsf(a[i]-b[i]); if(!(d<=md)) md=d; } }
  if(bad) printf("  MISMATCH %s: %ld of %ld differ, max abs diff %g\n", what, bad, n, md);
  return bad==0;
}
static int check(long B,long T,long C,long H,const long *lens,int isa, int verbose){
  long N=B*T; float *qkv=malloc(4*N*3*C), *dy=malloc(4*N*C);
  for(long i=0;i<N*3*C;i++) qkv[i]=2*rnd(); for(long i=0;i<N*C;i++) dy[i]=rnd();
  for(long i=0;i<3*C;i++) qkv[i]*=40;
  float *o1=malloc(4*N*C),*o2=malloc(4*N*C),*a1=malloc(4*B*H*T*T),*a2=malloc(4*B*H*T*T);
  for(long i=0;i<B*H*T*T;i++){ a1[i]=NAN; a2[i]=NAN; }
  for(long i=0;i<N*C;i++){ o1[i]=9; o2[i]=9; }
  long hd=C/H; float *s1=malloc(4*(hd*T+3*T*(T+32)+4096)), *s2=malloc(4*(hd*T+3*T*(T+32)+4096));
  for(long i=0;i<hd*T+3*T*(T+32)+4096;i++){ s1[i]=NAN; s2[i]=NAN; }
  old_set_isa(isa); new_set_isa(isa);
  layer_fwd(old_fwd,o1,a1,qkv,lens,B,T,C,H,s1); layer_fwd(new_fwd,o2,a2,qkv,lens,B,T,C,H,s2);
  int ok=1;
  // compare out rows < len, att rows < len cols < len
  for(long b=0;b<B;b++){ ok&=cmp("out",o1+b*T*C,o2+b*T*C,lens[b]*C);
    for(long h=0;h<H;h++) for(long r=0;r<lens[b];r++) ok&=cmp("att",a1+((b*H+h)*T+r)*T,a2+((b*H+h)*T+r)*T,lens[b]); }
  for(int acc=0;acc<2;acc++){
    float *d1=malloc(4*N*3*C),*d2=malloc(4*N*3*C); for(long i=0;i<N*3*C;i++){ d1[i]=acc?0.5f:NAN; d2[i]=d1[i]; }
    layer_bwd(old_bwd,acc,d1,dy,qkv,a1,lens,B,T,C,H,s1); layer_bwd(new_bwd,acc,d2,dy,qkv,a1,lens,B,T,C,H,s2);
    for(long b=0;b<B;b++) ok&=cmp(acc?"dqkv acc":"dqkv set",d1+b*T*3*C,d2+b*T*3*C,lens[b]*3*C);
    free(d1); free(d2);
  }
  if(verbose) printf("check B=%ld T=%ld C=%ld H=%ld isa=%d/%d: %s\n",B,T,C,H,isa,new_isa(),ok?"bit-identical":"DIFFERENT");
  free(qkv);free(dy);free(o1);free(o2);free(a1);free(a2);free(s1);free(s2);
  return ok;
}
int main(int argc,char**argv){
  int reps = argc>1? atoi(argv[1]) : 10;
  int onlycheck = argc>2 && !strcmp(argv[2],"check");
  if (argc>3 && !strcmp(argv[2],"cold")) {
    new_set_isa(2); old_set_isa(2);
    long B=32,T=128,C=256,H=8,N=B*T,hd=C/H; long lens[32]; for(int i=0;i<32;i++) lens[i]=T;
    float *qkv=malloc(4*N*3*C),*dy=malloc(4*N*C),*out=malloc(4*N*C),*att=malloc(4*B*H*T*T),*dqkv=malloc(4*N*3*C),*scr=malloc(4*(hd*T+3*T*(T+32)));
    for(long i=0;i<N*3*C;i++) qkv[i]=rnd(); for(long i=0;i<N*C;i++) dy[i]=rnd();
    for(int r=0;r<atoi(argv[1]);r++){ if(strchr(argv[3],'f')) layer_fwd(new_fwd,out,att,qkv,lens,B,T,C,H,scr); else layer_bwd(new_bwd,0,dqkv,dy,qkv,att,lens,B,T,C,H,scr); }
    return 0; }
  if (argc>3 && !strcmp(argv[2],"prof")) {
    long T=128,C=256,hd=32; float *qkv=malloc(4*T*3*C),*dy=malloc(4*T*C),*out=malloc(4*T*C),*att=malloc(4*T*T),*dq=malloc(4*T*3*C),*scr=malloc(4*(hd*T+3*T*(T+32)));
    for(long i=0;i<T*3*C;i++) qkv[i]=rnd(); for(long i=0;i<T*C;i++) dy[i]=rnd();
    fwd_t f = argv[3][0]=='o' ? old_fwd : new_fwd; bwd_t g = argv[3][0]=='o' ? old_bwd : new_bwd; int doB = strchr(argv[3],'b')!=0;
    f(out,C,att,T,qkv,qkv+C,qkv+2*C,3*C,T,hd,1/sqrtf(hd),scr);
    for(int i=0;i<200000;i++){ if(doB) g(0,dq,dq+C,dq+2*C,3*C,dy,C,qkv,qkv+C,qkv+2*C,att,T,T,hd,1/sqrtf(hd),scr); else f(out,C,att,T,qkv,qkv+C,qkv+2*C,3*C,T,hd,1/sqrtf(hd),scr); }
    return 0; }
  int allok=1;
  for(int isa=2;isa>=0;isa--){
    long l1[]={128,128}; allok&=check(2,128,256,8,l1,isa,1);
    long l2[]={5,3}; allok&=check(2,5,8,2,l2,isa,1);
    long l3[]={33,1,20}; allok&=check(3,33,40,2,l3,isa,1);
    long l4[]={64,61}; allok&=check(2,64,128,4,l4,isa,1);
    long l5[]={70}; allok&=check(1,70,96,3,l5,isa,1);
    long l6[]={9,8}; allok&=check(2,9,48,1,l6,isa,1);
    long l7[]={128,100,17,1}; allok&=check(4,128,256,8,l7,isa,1);
    long l8[]={64,64}; allok&=check(2,64,128,2,l8,isa,1);
  }
  for(int isa=2;isa>=0;isa--){ long l1[]={128,100,17,1}; allok&=check(4,128,256,8,l1,isa,0); long l2[]={70}; allok&=check(1,70,96,3,l2,isa,0); }
  printf("ALL %s\n", allok?"bit-identical":"DIFFERENT");
  if(onlycheck) return 0;
  old_set_isa(2); new_set_isa(2);
  long B=32,T=128,C=256,H=8,N=B*T,hd=C/H; long lens[32]; for(int i=0;i<32;i++) lens[i]=T;
  float *qkv=malloc(4*N*3*C),*dy=malloc(4*N*C),*out=malloc(4*N*C),*att=malloc(4*B*H*T*T),*dqkv=malloc(4*N*3*C),*scr=malloc(4*(hd*T+3*T*(T+32)));
  for(long i=0;i<N*3*C;i++) qkv[i]=rnd(); for(long i=0;i<N*C;i++) dy[i]=rnd();
  memset(out,0,4*N*C); memset(att,0,4*B*H*T*T); memset(dqkv,0,4*N*3*C); memset(scr,0,4*(hd*T+T*T));
  double best[2][2]={{1e9,1e9},{1e9,1e9}}, hot[2][2]={{1e9,1e9},{1e9,1e9}};
  for(int r=0;r<reps;r++) for(int v=0;v<2;v++){
    fwd_t f = v? new_fwd: old_fwd; bwd_t g = v? new_bwd: old_bwd;
    double t0=cpu(); layer_fwd(f,out,att,qkv,lens,B,T,C,H,scr); double t1=cpu();
    layer_bwd(g,0,dqkv,dy,qkv,att,lens,B,T,C,H,scr); double t2=cpu();
    if(t1-t0<best[v][0]) best[v][0]=t1-t0; if(t2-t1<best[v][1]) best[v][1]=t2-t1;
    // hot: one pair 256 times
    t0=cpu(); for(int i=0;i<256;i++) f(out,C,att,T,qkv,qkv+C,qkv+2*C,3*C,T,hd,1/sqrtf(hd),scr); t1=cpu();
    for(int i=0;i<256;i++) g(0,dqkv,dqkv+C,dqkv+2*C,3*C,dy,C,qkv,qkv+C,qkv+2*C,att,T,T,hd,1/sqrtf(hd),scr); t2=cpu();
    if(t1-t0<hot[v][0]) hot[v][0]=t1-t0; if(t2-t1<hot[v][1]) hot[v][1]=t2-t1;
  }
  double gf=256*(2.0*128*129/2*32*2)*1e-9;
  printf("layer (256 pairs, cold) CPU ms min of %d: fwd old %.3f new %.3f | bwd old %.3f new %.3f\n",reps,best[0][0]*1e3,best[1][0]*1e3,best[0][1]*1e3,best[1][1]*1e3);
  printf("one pair x256 (hot)     CPU ms min of %d: fwd old %.3f new %.3f | bwd old %.3f new %.3f\n",reps,hot[0][0]*1e3,hot[1][0]*1e3,hot[0][1]*1e3,hot[1][1]*1e3);
  printf("GFLOP/s cold fwd old %.0f new %.0f bwd old %.0f new %.0f; hot fwd old %.0f new %.0f bwd old %.0f new %.0f\n",
    gf/best[0][0],gf/best[1][0],2*gf/best[0][1],2*gf/best[1][1],gf/hot[0][0],gf/hot[1][0],2*gf/hot[0][1],2*gf/hot[1][1]);
  return 0;
}
