// An Ollama API refusal: the HTTP status and Ollama's error body `{"error": "..."}`.

export class OllamaApiError extends Error {
  override readonly name = 'OllamaApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const errorBody = (message: string): { error: string } => ({ error: message });
