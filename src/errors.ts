// One error hierarchy: everything cliplens throws on purpose is a CliplensError with a stable
// `code` (for programs) and a one-line message naming the problem (for people). Anything else
// that escapes is a bug.

export class CliplensError extends Error {
  /** Stable, machine-readable: 'E_USAGE', 'E_STORE', … (never changes with the message's wording). */
  readonly code: string;
  constructor(message: string, code = 'E_CLIPLENS') {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A bad flag, a missing file argument, a combination of options that does not make sense. */
export class UsageError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_USAGE');
  }
}

/** An input file or folder named by the user that cannot be read as what it should be (missing, a link loop, a directory, not UTF-8 text). */
export class InputFileError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_INPUT_FILE');
  }
}

/** An output file that could not be written (no space, no permission, …); nothing partial is left behind. */
export class OutputFileError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_OUTPUT_FILE');
  }
}

/** NaN or ±Inf where numbers must be finite: checkpoint weights, input pixels, model outputs. */
export class NonFiniteError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_NONFINITE');
  }
}

/** A model config (open_clip JSON, HF config.json) that is malformed or describes another architecture. */
export class ConfigError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_CONFIG');
  }
}

/** A checkpoint tensor that is missing, of the wrong shape or dtype, or not finite. */
export class WeightError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_WEIGHTS');
  }
}

/** Tensors of the wrong shape or size for the operation or model. */
export class ShapeError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_SHAPE');
  }
}

/** A model spec that names nothing cliplens can find (builtin, path, hub id). */
export class ModelNotFoundError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_MODEL_NOT_FOUND');
  }
}

export class TokenizerError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_TOKENIZER');
  }
}

/** A malformed or hostile safetensors file. */
export class SafetensorsError extends CliplensError {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`, 'E_SAFETENSORS');
  }
}

/** An image that cannot be decoded (corrupt, truncated, unsupported, too large). */
export class ImageDecodeError extends CliplensError {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`, 'E_IMAGE');
  }
}

export class ResampleError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_RESAMPLE');
  }
}

export class MaskError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_MASK');
  }
}

/** A dataset folder / CSV / list that cannot be read as one. */
export class DatasetError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_DATASET');
  }
}

/** A decomposition store that is missing, damaged, or does not match the run. */
export class StoreError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_STORE');
  }
}

/** An ONNX Runtime execution provider (--ep) that this installation cannot use. */
export class ExecutionProviderError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_EXECUTION_PROVIDER');
  }
}

/** Downloads from the model hub and its cache. */
export class HubError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_HUB');
  }
}

/** Artifacts made by different models combined in one computation. */
export class ProvenanceError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_PROVENANCE');
  }
}

/** An analysis asked for something its inputs cannot give (no labels, unknown head, …). */
export class AnalysisError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_ANALYSIS');
  }
}

export class FigureError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_FIGURE');
  }
}

export class ReportError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_REPORT');
  }
}

/** The synthetic toy world: bad scene specs, captions, study data. */
export class ToyworldError extends CliplensError {
  constructor(message: string) {
    super(message, 'E_TOYWORLD');
  }
}

/** An HTTP request the explorer refuses (status is the response code). */
export class HttpError extends CliplensError {
  constructor(readonly status: number, message: string) {
    super(message, 'E_HTTP');
  }
}
