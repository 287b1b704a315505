/**
 * A Server-Sent Events body from an async source of `data:` payloads (JSON text, then `[DONE]`),
 * read as the client reads (pull), so a slow client holds back nothing but its own deltas.
 * `onCancel` runs when the client goes away before the end (the runtime cancels the stream when
 * the socket closes), and `onClose` once, however the stream ends.
 */
export function sseBody(events: AsyncIterator<string>, hooks: { onCancel(): void; onClose(): void }): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    hooks.onClose();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await events.next();
        if (done) {
          controller.close();
          close();
        } else controller.enqueue(encoder.encode(`data: ${value}\n\n`));
      } catch (err) {
        controller.error(err);
        close();
      }
    },
    cancel() {
      hooks.onCancel();
      // The generator finishes once the aborted request's last delta arrives; nothing waits for it here.
      void events.return?.(undefined)?.catch(() => {});
      close();
    },
  });
}

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  // Proxies such as nginx buffer responses unless told not to.
  'x-accel-buffering': 'no',
} as const;
