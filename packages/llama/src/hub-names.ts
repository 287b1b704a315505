import { describeValue, LoRAError } from '@lora/core';

/**
 * Names that go into Hub URLs and into cache paths. A repository id, revision or file name may come
 * from a user or from a stranger's config (a base model named by an adapter), and each one becomes
 * part of a path under the cache directory: anything that could leave it is refused.
 */

/** A full commit id: what `X-Repo-Commit` carries and what names a snapshot folder. */
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/**
 * huggingface_hub `utils/_validators.py` `validate_repo_id`: an optional namespace and a name of
 * letters, digits, `_`, `-` and `.`, each starting and ending with a letter, digit or `_`, the
 * name at most 96 characters, no `--` or `..`, not ending in `.git`.
 */
const REPO_PART = '[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?';
const REPO_ID = new RegExp(`^(?:${REPO_PART}/)?${REPO_PART}$`);

export function checkRepoId(repo: unknown): string {
  if (
    typeof repo !== 'string' ||
    repo.length > 200 ||
    !REPO_ID.test(repo) ||
    (repo.split('/').at(-1) as string).length > 96 ||
    repo.includes('--') ||
    repo.includes('..') ||
    repo.endsWith('.git')
  ) {
    throw new LoRAError(
      'E_CONFIG',
      `expected a Hugging Face repository id such as "org/name" (letters, digits, "_", "-", "." without "--" or ".."), got ${describeValue(repo)}`,
    );
  }
  return repo;
}

/** A branch, tag or commit: `main`, `v1.0`, `refs/pr/1`, a commit id. It names `refs/{revision}` in the cache. */
export function checkRevision(revision: unknown): string {
  if (
    typeof revision !== 'string' ||
    revision.length === 0 ||
    revision.length > 256 ||
    !/^[A-Za-z0-9_.+-]+(?:\/[A-Za-z0-9_.+-]+)*$/.test(revision) ||
    revision.split('/').some((part) => part === '.' || part === '..')
  ) {
    throw new LoRAError('E_CONFIG', `expected a revision (a branch, tag or commit id such as "main"), got ${describeValue(revision)}`);
  }
  return revision;
}

/**
 * A file in a repository: a relative POSIX path. Like huggingface_hub `_local_folder.py`
 * `_validate_relative_filename` (which @huggingface/hub ports), it refuses `..` segments and
 * absolute, drive or UNC paths under POSIX and Windows rules both, and also empty segments,
 * backslashes and control characters.
 */
export function checkFileName(name: unknown): string {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.length > 1024 ||
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    /[\\\u0000-\u001f\u007f]/.test(name) ||
    name.split('/').some((part) => part === '' || part === '.' || part === '..' || /^[A-Za-z]:/.test(part))
  ) {
    throw new LoRAError(
      'E_CONFIG',
      `expected a relative file name inside the repository (such as "config.json" or "sub/dir/file"), got ${describeValue(name)}`,
    );
  }
  return name;
}

/** huggingface_hub `file_download.py` `repo_folder_name`: `models--org--name`. */
export function repoFolderName(repo: string): string {
  return ['models', ...repo.split('/')].join('--');
}

/** The Hub's download URL, huggingface_hub `file_download.py` `hf_hub_url`: the revision is one quoted path segment. */
export function resolveUrl(hubUrl: string, repo: string, revision: string, file: string): string {
  return `${hubUrl}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}
