/* run_artifact.c - generate text from a compiled Kiln artifact with the C API.
 *
 * Uses only the installed header and library:
 *   cc run_artifact.c -I$PREFIX/include -L$PREFIX/lib -lkiln_runtime -Wl,-rpath,$PREFIX/lib -o run_artifact
 *   ./run_artifact ARTIFACT_DIR "In the beginning" 32
 * Prints the generated token ids on one line, then the text.
 */
#include <kiln/runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed(kiln_status status) {
  if (!status)
    return 0;
  fprintf(stderr, "error: %s\n", kiln_status_message(status));
  kiln_status_free(status);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s ARTIFACT_DIR PROMPT TOKENS\n", argv[0]);
    return 2;
  }
  int tokens = atoi(argv[3]);
  kiln_artifact *artifact = NULL;
  kiln_session *session = NULL;
  int32_t *prompt = NULL, *out = calloc((size_t)(tokens > 0 ? tokens : 1), sizeof(int32_t));
  size_t prompt_len = 0;
  int rc = 1;
  if (failed(kiln_artifact_open(argv[1], NULL, &artifact)) || failed(kiln_session_create(artifact, NULL, &session)) ||
      failed(kiln_tokenize(artifact, argv[2], strlen(argv[2]), &prompt, &prompt_len)) ||
      failed(kiln_session_prefill(session, prompt, prompt_len, NULL)))
    goto done;
  kiln_sampling greedy = {0.0f, 0, 1.0f, 0};
  for (int i = 0; i < tokens; ++i) {
    if (failed(kiln_session_sample(session, &greedy, &out[i])))
      goto done;
    if (i + 1 < tokens && failed(kiln_session_decode(session, out[i], NULL)))
      goto done;
  }
  for (int i = 0; i < tokens; ++i)
    printf(i ? " %d" : "%d", out[i]);
  printf("\n");
  char *text = NULL;
  size_t length = 0;
  if (failed(kiln_detokenize(artifact, out, (size_t)tokens, &text, &length)))
    goto done;
  printf("%s%.*s\n", argv[2], (int)length, text);
  kiln_free(text);
  rc = 0;
done:
  kiln_free(prompt);
  free(out);
  kiln_session_destroy(session);
  kiln_artifact_close(artifact);
  return rc;
}
