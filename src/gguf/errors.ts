// One error class per kind of bad GGUF input. All are UserErrors: the user must pick another file.
import { UserError } from '../errors.js';

export abstract class GgufError extends UserError {
  abstract readonly kind: string;
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly offset?: number,
    next: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problem}${offset === undefined ? '' : ` (at byte ${offset})`}`, next, options);
  }
}

const REDOWNLOAD = ['check that the file is a complete GGUF model (re-download or re-convert it)'];

/** The file could not be opened or read at all. */
export class GgufReadError extends GgufError {
  readonly kind = 'read';
  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(file, `cannot read file: ${problem}`, undefined, ['check the path and its permissions'], options);
  }
}

/** Not a GGUF file: the first four bytes are not "GGUF". */
export class GgufMagicError extends GgufError {
  readonly kind = 'magic';
  constructor(file: string, got: Uint8Array) {
    const shown = [...got].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    super(file, `not a GGUF file (magic is "${shown}", expected "GGUF")`, 0, REDOWNLOAD);
  }
}

/** A version we cannot read: v1, a future version, or a big-endian file. */
export class GgufVersionError extends GgufError {
  readonly kind = 'version';
  constructor(file: string, problem: string) {
    super(file, problem, 4, ['convert the model with a current llama.cpp (little-endian GGUF v2 or v3)']);
  }
}

/** The file ends before the structure it declares. */
export class GgufTruncatedError extends GgufError {
  readonly kind = 'truncated';
  constructor(file: string, what: string, offset: number) {
    super(file, `file is truncated: ${what} runs past the end of the file`, offset, REDOWNLOAD);
  }
}

/** A count or length that cannot fit in the file (e.g. 2^60 tensors, a 4 GB string); refused before allocating. */
export class GgufLimitError extends GgufError {
  readonly kind = 'limit';
  constructor(file: string, problem: string, offset: number) {
    super(file, problem, offset, REDOWNLOAD);
  }
}

/** A tensor type id this build of llama.cpp does not know. */
export class GgufUnknownTypeError extends GgufError {
  readonly kind = 'unknown-type';
  constructor(file: string, what: string, offset: number) {
    super(file, what, offset, ['this model needs a newer llama.cpp than the pinned one']);
  }
}

/** Structurally invalid content: bad value type, bad shape, overlapping or misaligned tensor data. */
export class GgufFormatError extends GgufError {
  readonly kind = 'format';
  constructor(file: string, problem: string, offset?: number) {
    super(file, problem, offset, REDOWNLOAD);
  }
}
