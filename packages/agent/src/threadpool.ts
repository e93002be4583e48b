// Must be the first import of main.ts: libuv reads UV_THREADPOOL_SIZE when the pool is first
// used. A blocking read (and, while the host is away, a blocking write) on the virtio-serial
// port each hold a pool thread for as long as they wait, so the default of 4 is too few.
process.env.UV_THREADPOOL_SIZE ??= '16';
export {};
