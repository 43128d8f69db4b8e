// Quotes words for POSIX sh: ssh joins its remote argv into one string the remote shell re-parses.

const safe = /^[A-Za-z0-9_\/.,:=@%+-]+$/;

export function shellQuote(word: string): string {
  if (word !== '' && safe.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

export function shellJoin(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}
