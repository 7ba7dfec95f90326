// "Did you mean ...?" for a misspelt option name: the nearest known name by
// edit distance, only when it is close enough to be a likely typo.

/**
 * Edit distance with adjacent transpositions (optimal string alignment):
 * `infectd` / `infected` is 1, `infcetde` / `infected` is 2.
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0].push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2][j - 2] + 1);
      rows[i].push(d);
    }
  }
  return rows[a.length][b.length];
}

/**
 * Edits allowed for a word of this length: none for very short words (any
 * 3-letter word is 2 edits from many others), then about one per five letters, at most 3.
 */
export function editsAllowed(length: number): number {
  if (length <= 3) return 0;
  return Math.min(3, Math.max(1, Math.floor(length / 5)));
}

/**
 * The candidate nearest to `word` within editsAllowed, or undefined when none
 * is close. Ties go to the earlier candidate; case is ignored.
 */
export function nearestName(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  const allowed = editsAllowed(w.length);
  for (const name of candidates) {
    // the length difference alone is a lower bound: most candidates are skipped without the table
    if (Math.abs(name.length - w.length) > allowed) continue;
    const distance = editDistance(w, name.toLowerCase());
    if (distance <= allowed && distance > 0 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** ` (did you mean 'x'?)`, or '' when nothing is close; `spell` writes the name as the reader would type it. */
export function didYouMean(word: string, candidates: Iterable<string>, spell = (name: string): string => name): string {
  const near = nearestName(word, candidates);
  return near === undefined ? '' : ` (did you mean '${spell(near)}'?)`;
}
