// The subset of Ollama's Go templates that /api/generate needs: {{ .System }}, {{ .Prompt }}, {{ .Response }} and
// {{ if .X }}…{{ else }}…{{ end }}, with {{- -}} trimming. Anything else (range over .Messages, functions) is not
// rendered here; the caller falls back to the model's own chat template applied by llama-server.

type Node = { t: 'text'; s: string } | { t: 'var'; name: string } | { t: 'if'; name: string; then: Node[]; else: Node[] };

const FIELDS = new Set(['System', 'Prompt', 'Response']);

function parse(src: string): Node[] | undefined {
  const tokens: ({ t: 'text'; s: string } | { t: 'act'; s: string })[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      tokens.push({ t: 'text', s: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    const close = src.indexOf('}}', open);
    if (close < 0) return undefined;
    let act = src.slice(open + 2, close);
    if (act.startsWith('-')) {
      text = text.replace(/\s+$/, '');
      act = act.slice(1);
    }
    let next = close + 2;
    if (act.endsWith('-')) {
      act = act.slice(0, -1);
      const m = /^\s*/.exec(src.slice(next));
      next += m?.[0].length ?? 0;
    }
    tokens.push({ t: 'text', s: text }, { t: 'act', s: act.trim() });
    i = next;
  }
  const stack: { nodes: Node[]; node?: Extract<Node, { t: 'if' }>; inElse: boolean }[] = [{ nodes: [], inElse: false }];
  const top = () => stack[stack.length - 1]!;
  const add = (n: Node) => {
    const f = top();
    if (f.node) (f.inElse ? f.node.else : f.node.then).push(n);
    else f.nodes.push(n);
  };
  for (const tok of tokens) {
    if (tok.t === 'text') {
      if (tok.s) add({ t: 'text', s: tok.s });
      continue;
    }
    const a = tok.s;
    let m: RegExpExecArray | null;
    if ((m = /^\.(\w+)$/.exec(a)) && FIELDS.has(m[1]!)) add({ t: 'var', name: m[1]! });
    else if ((m = /^if \.(\w+)$/.exec(a)) && FIELDS.has(m[1]!)) {
      const node: Extract<Node, { t: 'if' }> = { t: 'if', name: m[1]!, then: [], else: [] };
      add(node);
      stack.push({ nodes: [], node, inElse: false });
    } else if (a === 'else' && stack.length > 1) top().inElse = true;
    else if (a === 'end' && stack.length > 1) stack.pop();
    else if (a.startsWith('/*')) continue; // a comment
    else return undefined;
  }
  return stack.length === 1 ? stack[0]!.nodes : undefined;
}

/** True when render() can handle this template. */
export const renderable = (src: string): boolean => parse(src) !== undefined;

/** The prompt for one turn: the template up to {{ .Response }} (what follows is the model's part), or undefined. */
export function renderPrompt(src: string, v: { System: string; Prompt: string }): string | undefined {
  const nodes = parse(src);
  if (!nodes) return undefined;
  let out = '';
  let stopped = false;
  const walk = (ns: Node[]) => {
    for (const n of ns) {
      if (stopped) return;
      if (n.t === 'text') out += n.s;
      else if (n.t === 'var') {
        if (n.name === 'Response') stopped = true;
        else out += v[n.name as 'System' | 'Prompt'];
      } else walk((n.name === 'Response' ? '' : v[n.name as 'System' | 'Prompt']) ? n.then : n.else);
    }
  };
  walk(nodes);
  return out;
}
