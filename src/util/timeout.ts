// A deadline on a promise whose library offers none (the etcd3 client waits for a dead server forever).

export class DeadlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeadlineError';
  }
}

/** `p`, or a DeadlineError naming `what` after `ms`; the timer never outlives the race. */
export async function withDeadline<T>(what: string, p: Promise<T>, ms: number, source = 'etcd request'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what}: ${source} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
