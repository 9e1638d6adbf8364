/*
 * moderation._scan: the per-character loops of the prefilter's hot path, in C.
 *
 * Each function is the exact equivalent of Python code in moderation.normalize or
 * moderation.phonetic that stays the reference (tests hold the two equal on random and real
 * text):
 *
 *   translate(text, table)  ->  str | None
 *       text.translate(table) for a table of code points indexed by code point (an
 *       array('I')); None when a character lies past the table or maps to IRREGULAR
 *       (U+FFFF: it folds to zero or several characters), for the caller's slow path.
 *
 *   context_steps(folded, digit_words, units)  ->  int
 *       A bit per context step that would change ``folded`` (STEP_SEPARATORS 1, STEP_REPEATS
 *       2, STEP_LEETSPEAK 4, STEP_DIGITS 8): the conditions of Normalizer's finders, without
 *       their regular expressions.
 *
 *   apply_context_steps(text, starts, ends, digit_words, units, variants, order)
 *       Those steps applied in ``order`` (their bits, as normalize.STEPS orders them), with
 *       each character's original span and mark carried.
 *
 *   phonetic_view(text, table, trie, max_token, gap, first_code, last_code)
 *       The phonetic view of moderation.phonetic (its reference_view, in one pass).
 *
 *   char_classes(text)  ->  int
 *       A bit per kind of character the text holds (LATIN a-z, DIGIT 0-9, AT, DOT, COLON,
 *       NUMERAL 一幺壹, NUMERALS five Chinese numerals in a row):
 *       what the phonetic view and the patterns ask before doing any work.
 *
 *   hashed_ngrams(text, syllables, syllable_hashes, first_code, bits, weights, top)
 *       The learned scorer's features (moderation.scorer's reference_ngrams): the hashed
 *       character 1-3 grams of the text and syllable 1-2 grams of its syllable codes, each
 *       distinct bucket once. With ``weights`` None, the buckets in first-seen order; else
 *       (sum of their weights, how many), or with ``top`` > 0 the ``top`` buckets of largest
 *       positive weight as (weight, start, end) of their first n-gram.
 *
 * Pure functions of their arguments; they hold no state and release nothing they did not take.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define IRREGULAR 0xFFFFu
/* The longest Latin word phonetic_view segments (phonetic.MAX_TOKEN may be at most this). */
#define MAX_TOKEN_LIMIT 64

/* The Chinese ranges of normalize.HAN. */
static inline int
is_han(Py_UCS4 c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x3134F) || c == 0x3007;
}

static inline int
is_lower(Py_UCS4 c)
{
    return c >= 'a' && c <= 'z';
}

static inline int
is_digit(Py_UCS4 c)
{
    return c >= '0' && c <= '9';
}

static inline int
is_lower_or_digit(Py_UCS4 c)
{
    return is_lower(c) || is_digit(c);
}

/* normalize.BOUNDARY: punctuation that ends a word, never dropped as a separator. */
static inline int
is_boundary(Py_UCS4 c)
{
    switch (c) {
    case 0xFF0C: /* ， */
    case 0x3002: /* 。 */
    case 0xFF01: /* ！ */
    case 0xFF1F: /* ？ */
    case 0xFF1B: /* ； */
    case 0xFF1A: /* ： */
    case 0x3001: /* 、 */
    case ',':
    case '!':
    case '?':
    case ';':
    case ':':
    case 0x2026: /* … */
    case '\n':
    case '\r':
        return 1;
    default:
        return 0;
    }
}

/* normalize.SEPARATOR: (?:[^\w{BOUNDARY}{HAN}]|_), with \w as the re module reads it. */
static inline int
is_separator(Py_UCS4 c)
{
    if (c < 0x80) /* ASCII: letters and digits are \w, the rest but boundaries separate */
        return c == '_' || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || is_boundary(c));
    if (is_han(c) || is_boundary(c) || Py_UNICODE_ISALNUM(c))
        return 0;
    return 1;
}

/* What through_table gives for a character the table cannot map: past every code point. */
#define UNMAPPED 0x110000u

/* ``c`` through a code-point table: its one replacement, or UNMAPPED when ``c`` lies past the
 * table or maps to IRREGULAR (or to no code point), for the caller's slow path. */
static inline Py_UCS4
through_table(const uint32_t *table, Py_UCS4 size, Py_UCS4 c)
{
    if (c >= size)
        return UNMAPPED;
    const Py_UCS4 out = table[c];
    return out == IRREGULAR || out > 0x10FFFF ? UNMAPPED : out;
}

/* False (with TypeError set) unless a FASTCALL function got ``want`` arguments. */
static int
nargs_are(Py_ssize_t nargs, Py_ssize_t want, const char *usage)
{
    if (nargs == want)
        return 1;
    PyErr_Format(PyExc_TypeError, "%s takes %zd arguments", usage, want);
    return 0;
}

static PyObject *
scan_translate(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!nargs_are(nargs, 2, "translate(text, table)"))
        return NULL;
    PyObject *text = args[0];
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "translate: text must be str");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (view.len % 4 != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "translate: table must hold 4-byte code points");
        return NULL;
    }
    const uint32_t *table = (const uint32_t *)view.buf;
    const Py_UCS4 size = (Py_UCS4)(view.len / 4);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);

    /* First pass: every character maps to one, and the widest result. */
    Py_UCS4 widest = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_UCS4 out = through_table(table, size, PyUnicode_READ(kind, data, i));
        if (out == UNMAPPED) {
            PyBuffer_Release(&view);
            Py_RETURN_NONE;
        }
        if (out > widest)
            widest = out;
    }
    PyObject *result = PyUnicode_New(n, widest);
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const int out_kind = PyUnicode_KIND(result);
    void *out_data = PyUnicode_DATA(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyUnicode_WRITE(out_kind, out_data, i, table[PyUnicode_READ(kind, data, i)]);
    }
    PyBuffer_Release(&view);
    return result;
}

/* Bits of char_classes, exported as module constants of the same names. */
#define CLASS_LATIN 1
#define CLASS_DIGIT 2
#define CLASS_AT 4
#define CLASS_DOT 8
#define CLASS_COLON 16
#define CLASS_NUMERAL 32 /* 一 幺 壹: how a mobile number spelled in Chinese numerals starts */
#define CLASS_NUMERALS 64 /* five Chinese numerals in a row (normalize.CHINESE_DIGITS): a number */
#define NUMERAL_RUN 5

/* True for a character of normalize.CHINESE_DIGITS (the tests hold the two to each other). */
static int
is_chinese_digit(Py_UCS4 c)
{
    switch (c) {
    case 0x96F6: case 0x3007: case 0x4E00: case 0x4E8C: case 0x4E09: case 0x56DB: /* 零〇一二三四 */
    case 0x4E94: case 0x516D: case 0x4E03: case 0x516B: case 0x4E5D: case 0x5E7A: /* 五六七八九幺 */
    case 0x4E24: case 0x58F9: case 0x8D30: case 0x53C1: case 0x8086: case 0x4F0D: /* 两壹贰叁肆伍 */
    case 0x9646: case 0x67D2: case 0x634C: case 0x7396:                           /* 陆柒捌玖 */
        return 1;
    default:
        return 0;
    }
}

static PyObject *
scan_char_classes(PyObject *module, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "char_classes: text must be str");
        return NULL;
    }
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    long classes = 0;
    Py_ssize_t run = 0; /* Chinese numerals in a row so far */
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0x80) {
            if (c == 0x4E00 || c == 0x5E7A || c == 0x58F9)
                classes |= CLASS_NUMERAL;
            if (c >= 0x3007 && is_chinese_digit(c)) {
                if (++run >= NUMERAL_RUN)
                    classes |= CLASS_NUMERALS;
            }
            else
                run = 0;
            continue;
        }
        run = 0;
        if (is_lower(c))
            classes |= CLASS_LATIN;
        else if (is_digit(c))
            classes |= CLASS_DIGIT;
        else if (c == '@')
            classes |= CLASS_AT;
        else if (c == '.')
            classes |= CLASS_DOT;
        else if (c == ':')
            classes |= CLASS_COLON;
    }
    return PyLong_FromLong(classes);
}

#define STEP_SEPARATORS 1
#define STEP_REPEATS 2
#define STEP_LEETSPEAK 4
#define STEP_DIGITS 8

/* Marks a context step leaves on the characters it writes (an index into ``variants``). */
#define MARK_NONE 0
#define MARK_REPEAT 1
#define MARK_LEETSPEAK 2
#define MARK_DIGIT 3

/* A text under the context steps: each character with its original span and its mark. */
typedef struct {
    Py_UCS4 *ch;
    Py_ssize_t *st, *en;
    unsigned char *mk;
    Py_ssize_t n, cap;
} Buf;

static void
buf_free(Buf *b)
{
    PyMem_Free(b->ch);
    PyMem_Free(b->st);
    PyMem_Free(b->en);
    PyMem_Free(b->mk);
    b->ch = NULL;
    b->st = b->en = NULL;
    b->mk = NULL;
    b->n = b->cap = 0;
}

static int
buf_init(Buf *b, Py_ssize_t cap)
{
    if (cap < 16)
        cap = 16;
    b->n = 0;
    b->cap = cap;
    b->ch = PyMem_New(Py_UCS4, cap);
    b->st = PyMem_New(Py_ssize_t, cap);
    b->en = PyMem_New(Py_ssize_t, cap);
    b->mk = PyMem_New(unsigned char, cap);
    if (!b->ch || !b->st || !b->en || !b->mk) {
        buf_free(b);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int
buf_push(Buf *b, Py_UCS4 c, Py_ssize_t st, Py_ssize_t en, unsigned char mk)
{
    if (b->n == b->cap) {
        Py_ssize_t cap = b->cap * 2;
        if (!PyMem_Resize(b->ch, Py_UCS4, cap) || !PyMem_Resize(b->st, Py_ssize_t, cap) ||
            !PyMem_Resize(b->en, Py_ssize_t, cap) || !PyMem_Resize(b->mk, unsigned char, cap)) {
            PyErr_NoMemory();
            return -1;
        }
        b->cap = cap;
    }
    b->ch[b->n] = c;
    b->st[b->n] = st;
    b->en[b->n] = en;
    b->mk[b->n] = mk;
    b->n++;
    return 0;
}

/* Copy ``in[i:j]`` to ``out`` as it is (kept characters keep their spans and marks). */
static int
buf_copy(const Buf *in, Py_ssize_t i, Py_ssize_t j, Buf *out)
{
    for (; i < j; i++) {
        if (buf_push(out, in->ch[i], in->st[i], in->en[i], in->mk[i]) < 0)
            return -1;
    }
    return 0;
}

/* Each step finds its edits in ``in`` as Normalizer's finder of that name does. With ``out``
 * NULL it only says whether it would change anything (1 or 0); otherwise it writes the edited
 * text to ``out`` and says whether it changed anything. -1 on error. */

/* separators: a whole run of separators with the right neighbours is dropped, and a line
 * break between two Chinese characters when one of them stands on a line of its own. */
static int
step_separators(const Buf *in, Buf *out)
{
    const Py_UCS4 *t = in->ch;
    const Py_ssize_t n = in->n;
    int changed = 0;
    Py_ssize_t i = 0, kept = 0;
    while (i < n) {
        /* A line break inside a word: between two Chinese characters, one of them a line
         * of its own (傻\n逼). */
        if (t[i] == '\n') {
            if (i > 0 && i + 1 < n && is_han(t[i - 1]) && is_han(t[i + 1]) &&
                (i == 1 || t[i - 2] == '\n' || i + 2 == n || t[i + 2] == '\n')) {
                if (out == NULL)
                    return 1;
                if (buf_copy(in, kept, i, out) < 0)
                    return -1;
                kept = i + 1;
                changed = 1;
            }
            i++;
            continue;
        }
        if (!is_separator(t[i])) {
            i++;
            continue;
        }
        Py_ssize_t j = i;
        while (j < n && is_separator(t[j]))
            j++;
        int drop = 0;
        if (i > 0 && j < n) {
            Py_UCS4 left = t[i - 1], right = t[j];
            drop = (is_han(left) && (is_han(right) || is_lower_or_digit(right))) ||
                   (is_lower_or_digit(left) && is_han(right)) ||
                   (is_lower(left) && is_lower(right) && !(i >= 2 && is_lower_or_digit(t[i - 2])) &&
                    !(j + 1 < n && is_lower_or_digit(t[j + 1])));
        }
        if (drop) {
            if (out == NULL)
                return 1;
            if (buf_copy(in, kept, i, out) < 0)
                return -1;
            kept = j;
            changed = 1;
        }
        i = j;
    }
    if (out != NULL && buf_copy(in, kept, n, out) < 0)
        return -1;
    return changed;
}

/* repeats: a run of three or more of one Chinese character or Latin letter counts once. */
static int
step_repeats(const Buf *in, Buf *out)
{
    const Py_UCS4 *t = in->ch;
    const Py_ssize_t n = in->n;
    int changed = 0;
    Py_ssize_t i = 0, kept = 0;
    while (i < n) {
        Py_ssize_t j = i + 1;
        while (j < n && t[j] == t[i])
            j++;
        if (j - i >= 3 && (is_han(t[i]) || is_lower(t[i]))) {
            if (out == NULL)
                return 1;
            if (buf_copy(in, kept, i, out) < 0 ||
                buf_push(out, t[i], in->st[i], in->en[j - 1], MARK_REPEAT) < 0)
                return -1;
            kept = j;
            changed = 1;
        }
        i = j;
    }
    if (out != NULL && buf_copy(in, kept, n, out) < 0)
        return -1;
    return changed;
}

/* normalize.LEET: the letter a leet character stands for, or 0. */
static inline Py_UCS4
leet_letter(Py_UCS4 c)
{
    switch (c) {
    case '0':
        return 'o';
    case '1':
        return 'i';
    case '3':
        return 'e';
    case '4':
        return 'a';
    case '5':
        return 's';
    case '7':
        return 't';
    case '@':
        return 'a';
    case '$':
        return 's';
    default:
        return 0;
    }
}

/* leetspeak: a leet character between two Latin letters becomes its letter. */
static int
step_leetspeak(const Buf *in, Buf *out)
{
    const Py_UCS4 *t = in->ch;
    const Py_ssize_t n = in->n;
    int changed = 0;
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 1; i + 1 < n; i++) {
        Py_UCS4 letter = leet_letter(t[i]);
        if (letter && is_lower(t[i - 1]) && is_lower(t[i + 1])) {
            if (out == NULL)
                return 1;
            if (buf_copy(in, kept, i, out) < 0 ||
                buf_push(out, letter, in->st[i], in->en[i], MARK_LEETSPEAK) < 0)
                return -1;
            kept = i + 1;
            changed = 1;
        }
    }
    if (out != NULL && buf_copy(in, kept, n, out) < 0)
        return -1;
    return changed;
}

/* True when ``c`` is one of the characters of the str ``chars`` (units, gap characters). */
static inline int
in_str(Py_UCS4 c, PyObject *chars)
{
    const int kind = PyUnicode_KIND(chars);
    const void *data = PyUnicode_DATA(chars);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(chars);
    for (Py_ssize_t k = 0; k < n; k++) {
        if (PyUnicode_READ(kind, data, k) == c)
            return 1;
    }
    return 0;
}

/* digits: a known digit run touching a Chinese character, with no letter, digit or unit on
 * the wrong side, becomes the word it stands for (``words``: a dict of run -> word). */
static int
step_digits(const Buf *in, Buf *out, PyObject *words, PyObject *units)
{
    const Py_UCS4 *t = in->ch;
    const Py_ssize_t n = in->n;
    int changed = 0;
    Py_ssize_t i = 0, kept = 0;
    while (i < n) {
        if (!is_digit(t[i])) {
            i++;
            continue;
        }
        Py_ssize_t j = i;
        while (j < n && is_digit(t[j]))
            j++;
        const int has_left = i > 0, has_right = j < n;
        const Py_UCS4 left = has_left ? t[i - 1] : 0;
        const Py_UCS4 right = has_right ? t[j] : 0;
        /* right not in _NOT_AFTER_DIGITS (letters, digits, units, % and .); "" is not in it */
        const int right_free =
            !has_right ||
            !(is_lower_or_digit(right) || right == '%' || right == '.' || in_str(right, units));
        const int after_han = has_left && is_han(left) && right_free;
        /* left not in _NOT_BEFORE_DIGITS (letters, digits and .) */
        const int left_free = !has_left || !(is_lower_or_digit(left) || left == '.');
        const int before_han = left_free && has_right && is_han(right) && !in_str(right, units);
        if (after_han || before_han) {
            PyObject *run = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, t + i, j - i);
            if (run == NULL)
                return -1;
            PyObject *word = PyDict_GetItemWithError(words, run); /* borrowed */
            Py_DECREF(run);
            if (word == NULL && PyErr_Occurred())
                return -1;
            if (word != NULL) {
                if (!PyUnicode_Check(word)) {
                    PyErr_SetString(PyExc_TypeError, "digit words must be str");
                    return -1;
                }
                if (out == NULL)
                    return 1;
                if (buf_copy(in, kept, i, out) < 0)
                    return -1;
                const int kind = PyUnicode_KIND(word);
                const void *data = PyUnicode_DATA(word);
                for (Py_ssize_t k = 0; k < PyUnicode_GET_LENGTH(word); k++) {
                    if (buf_push(out, PyUnicode_READ(kind, data, k), in->st[i], in->en[j - 1],
                                 MARK_DIGIT) < 0)
                        return -1;
                }
                kept = j;
                changed = 1;
            }
        }
        i = j;
    }
    if (out != NULL && buf_copy(in, kept, n, out) < 0)
        return -1;
    return changed;
}

/* ``text`` as a buffer with the identity spans, or the spans given as lists. */
static int
buf_from(PyObject *text, PyObject *starts, PyObject *ends, Buf *b)
{
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (buf_init(b, n) < 0)
        return -1;
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const int spans = starts != Py_None;
    if (spans && (!PyList_Check(starts) || !PyList_Check(ends) ||
                  PyList_GET_SIZE(starts) != n || PyList_GET_SIZE(ends) != n)) {
        buf_free(b);
        PyErr_SetString(PyExc_ValueError, "starts and ends must be lists as long as the text");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t st = i, en = i + 1;
        if (spans) {
            st = PyLong_AsSsize_t(PyList_GET_ITEM(starts, i));
            en = PyLong_AsSsize_t(PyList_GET_ITEM(ends, i));
            if ((st == -1 || en == -1) && PyErr_Occurred()) {
                buf_free(b);
                return -1;
            }
        }
        b->ch[i] = PyUnicode_READ(kind, data, i);
        b->st[i] = st;
        b->en[i] = en;
        b->mk[i] = MARK_NONE;
    }
    b->n = n;
    return 0;
}

static int
check_args(PyObject *text, PyObject *words, PyObject *units)
{
    if (!PyUnicode_Check(text) || !PyUnicode_Check(units)) {
        PyErr_SetString(PyExc_TypeError, "the text and units must be str");
        return -1;
    }
    if (!PyDict_Check(words)) {
        PyErr_SetString(PyExc_TypeError, "digit words must be a dict");
        return -1;
    }
    return 0;
}

static PyObject *
scan_context_steps(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!nargs_are(nargs, 3, "context_steps(folded, digit_words, units)"))
        return NULL;
    PyObject *text = args[0], *words = args[1], *units = args[2];
    if (check_args(text, words, units) < 0)
        return NULL;
    Buf b;
    if (buf_from(text, Py_None, Py_None, &b) < 0)
        return NULL;
    long steps = 0;
    int r;
    if ((r = step_separators(&b, NULL)) > 0)
        steps |= STEP_SEPARATORS;
    if (r >= 0 && (r = step_repeats(&b, NULL)) > 0)
        steps |= STEP_REPEATS;
    if (r >= 0 && (r = step_leetspeak(&b, NULL)) > 0)
        steps |= STEP_LEETSPEAK;
    if (r >= 0 && (r = step_digits(&b, NULL, words, units)) > 0)
        steps |= STEP_DIGITS;
    buf_free(&b);
    if (r < 0)
        return NULL;
    return PyLong_FromLong(steps);
}

/* Run one step from ``*cur`` into a fresh buffer; on a change the fresh one becomes current. */
static int
run_step(int step, Buf *cur, PyObject *words, PyObject *units, long *steps)
{
    Buf next;
    if (buf_init(&next, cur->n + 8) < 0)
        return -1;
    int r;
    switch (step) {
    case STEP_SEPARATORS:
        r = step_separators(cur, &next);
        break;
    case STEP_REPEATS:
        r = step_repeats(cur, &next);
        break;
    case STEP_LEETSPEAK:
        r = step_leetspeak(cur, &next);
        break;
    default:
        r = step_digits(cur, &next, words, units);
        break;
    }
    if (r > 0) {
        buf_free(cur);
        *cur = next;
        *steps |= step;
    }
    else {
        buf_free(&next);
    }
    return r < 0 ? -1 : 0;
}

static PyObject *
buf_result(const Buf *b, PyObject *variants, long steps)
{
    PyObject *text = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, b->ch, b->n);
    PyObject *starts = PyList_New(b->n);
    PyObject *ends = PyList_New(b->n);
    PyObject *marks = PyDict_New();
    PyObject *result = NULL;
    if (!text || !starts || !ends || !marks)
        goto done;
    for (Py_ssize_t i = 0; i < b->n; i++) {
        PyObject *st = PyLong_FromSsize_t(b->st[i]);
        PyObject *en = PyLong_FromSsize_t(b->en[i]);
        if (!st || !en) {
            Py_XDECREF(st);
            Py_XDECREF(en);
            goto done;
        }
        PyList_SET_ITEM(starts, i, st);
        PyList_SET_ITEM(ends, i, en);
        if (b->mk[i] != MARK_NONE) {
            PyObject *key = PyLong_FromSsize_t(i);
            if (key == NULL)
                goto done;
            int failed = PyDict_SetItem(marks, key, PyTuple_GET_ITEM(variants, b->mk[i] - 1));
            Py_DECREF(key);
            if (failed < 0)
                goto done;
        }
    }
    result = Py_BuildValue("(OOOOl)", text, starts, ends, marks, steps);
done:
    Py_XDECREF(text);
    Py_XDECREF(starts);
    Py_XDECREF(ends);
    Py_XDECREF(marks);
    return result;
}

static PyObject *
scan_apply_context_steps(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!nargs_are(nargs, 7, "apply_context_steps(text, starts, ends, digit_words, units, "
                             "variants, order)"))
        return NULL;
    PyObject *text = args[0], *starts = args[1], *ends = args[2];
    PyObject *words = args[3], *units = args[4], *variants = args[5], *order = args[6];
    if (check_args(text, words, units) < 0)
        return NULL;
    if ((starts == Py_None) != (ends == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "starts and ends must both be lists or both None");
        return NULL;
    }
    if (!PyTuple_Check(variants) || PyTuple_GET_SIZE(variants) != 3) {
        PyErr_SetString(PyExc_TypeError, "variants must be (repeat, leetspeak, digit)");
        return NULL;
    }
    /* The steps in the order they run (normalize.STEPS's), each once, by its STEP_ bit. */
    int steps_in_order[4], count = 0, seen = 0;
    if (!PyTuple_Check(order) || PyTuple_GET_SIZE(order) != 4) {
        PyErr_SetString(PyExc_TypeError, "order must be a tuple of the four STEP_ bits");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < 4; k++) {
        long bit = PyLong_AsLong(PyTuple_GET_ITEM(order, k));
        if (bit == -1 && PyErr_Occurred())
            return NULL;
        if ((bit != STEP_SEPARATORS && bit != STEP_REPEATS && bit != STEP_LEETSPEAK &&
             bit != STEP_DIGITS) || (seen & bit)) {
            PyErr_SetString(PyExc_ValueError, "order must hold each STEP_ bit once");
            return NULL;
        }
        seen |= (int)bit;
        steps_in_order[count++] = (int)bit;
    }
    Buf cur;
    if (buf_from(text, starts, ends, &cur) < 0)
        return NULL;
    long steps = 0;
    for (int k = 0; k < count; k++) {
        if (run_step(steps_in_order[k], &cur, words, units, &steps) < 0) {
            buf_free(&cur);
            return NULL;
        }
    }
    /* Digits that became letters or characters can stand next to separators or make a run
     * (a5ß -> asss): a second round reaches the fixed point. */
    if (steps & (STEP_LEETSPEAK | STEP_DIGITS)) {
        if (run_step(STEP_SEPARATORS, &cur, words, units, &steps) < 0 ||
            run_step(STEP_REPEATS, &cur, words, units, &steps) < 0) {
            buf_free(&cur);
            return NULL;
        }
    }
    PyObject *result;
    if (steps == 0) {
        result = Py_NewRef(Py_None);
    }
    else {
        result = buf_result(&cur, variants, steps);
    }
    buf_free(&cur);
    return result;
}

/* The phonetic view: Phonetics.reference_view (moderation.phonetic) for a text whose every
 * character lies in the syllable table. Han characters become their syllable codes through
 * ``table``; runs of Latin letters that spell pinyin (the fewest syllables, ties to the
 * shortest last syllable, as Phonetics.segment) and can take part in a key become syllable
 * codes too, with the gap characters between two such words dropped. */

/* One pinyin word of the text: [start, end) and its syllables at syllables[first:first+count]. */
typedef struct {
    Py_ssize_t start, end;
    Py_ssize_t first, count;
} Token;

typedef struct {
    Py_UCS4 code;
    Py_ssize_t length;
} Syllable;

#define TRIE_WIDTH 27 /* a child per letter a-z, then the code of the syllable ending here */

/* The syllables of ``t[0:n]`` (lower-case letters) written to ``out`` in order; their count,
 * or -1 when the word is not pinyin. ``trie`` rows are TRIE_WIDTH wide, row 0 the root. */
static Py_ssize_t
segment(const Py_UCS4 *t, Py_ssize_t n, const int32_t *trie, Py_ssize_t rows, Syllable *out)
{
    Py_ssize_t best[MAX_TOKEN_LIMIT + 1], from[MAX_TOKEN_LIMIT + 1];
    Py_UCS4 code[MAX_TOKEN_LIMIT + 1];
    best[0] = 0;
    for (Py_ssize_t k = 1; k <= n; k++)
        best[k] = -1;
    for (Py_ssize_t s = 0; s < n; s++) {
        if (best[s] < 0)
            continue;
        Py_ssize_t node = 0;
        for (Py_ssize_t e = s; e < n; e++) {
            node = trie[node * TRIE_WIDTH + (t[e] - 'a')];
            if (node <= 0 || node >= rows)
                break;
            Py_UCS4 ends_here = (Py_UCS4)trie[node * TRIE_WIDTH + 26];
            /* Among the fewest syllables the latest start wins: Phonetics.segment tries the
             * shortest last syllable first and keeps it unless a later one is fewer. */
            if (ends_here && (best[e + 1] < 0 || best[s] + 1 <= best[e + 1])) {
                best[e + 1] = best[s] + 1;
                from[e + 1] = s;
                code[e + 1] = ends_here;
            }
        }
    }
    if (best[n] < 0)
        return -1;
    Py_ssize_t count = best[n];
    for (Py_ssize_t e = n, k = count - 1; e > 0; e = from[e], k--) {
        out[k].code = code[e];
        out[k].length = e - from[e];
    }
    return count;
}

/* True when ``t[i:j]`` holds nothing but gap characters (or nothing). */
static int
only_gap(const Py_UCS4 *t, Py_ssize_t i, Py_ssize_t j, PyObject *gap)
{
    for (; i < j; i++) {
        if (!in_str(t[i], gap))
            return 0;
    }
    return 1;
}

static PyObject *
view_result(const Py_UCS4 *text, const Py_UCS4 *codes, Py_ssize_t n, const Token *tokens,
            Py_ssize_t count, const Syllable *syllables, PyObject *gap)
{
    Py_UCS4 *out = PyMem_New(Py_UCS4, n > 0 ? n : 1);
    PyObject *starts = PyList_New(0), *ends = PyList_New(0), *latin = PyList_New(0);
    PyObject *result = NULL;
    if (out == NULL || !starts || !ends || !latin) {
        if (out == NULL)
            PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t size = 0, cursor = 0, previous_end = -1;
#define PUSH(CODE, ST, EN)                                                                    \
    do {                                                                                      \
        PyObject *st_ = PyLong_FromSsize_t(ST), *en_ = PyLong_FromSsize_t(EN);                \
        int bad_ = st_ == NULL || en_ == NULL || PyList_Append(starts, st_) < 0 ||           \
                   PyList_Append(ends, en_) < 0;                                              \
        Py_XDECREF(st_);                                                                      \
        Py_XDECREF(en_);                                                                      \
        if (bad_)                                                                             \
            goto done;                                                                        \
        out[size++] = (CODE);                                                                 \
    } while (0)
    for (Py_ssize_t i = 0; i < count; i++) {
        const Token *token = &tokens[i];
        Py_ssize_t keep_until = token->start;
        if (previous_end >= 0 && only_gap(text, previous_end, token->start, gap))
            keep_until = previous_end; /* two pinyin words with only a gap: one key */
        for (Py_ssize_t k = cursor; k < keep_until; k++)
            PUSH(codes[k], k, k + 1);
        Py_ssize_t offset = token->start;
        for (Py_ssize_t k = 0; k < token->count; k++) {
            const Syllable *syllable = &syllables[token->first + k];
            PyObject *position = PyLong_FromSsize_t(size);
            if (position == NULL || PyList_Append(latin, position) < 0) {
                Py_XDECREF(position);
                goto done;
            }
            Py_DECREF(position);
            PUSH(syllable->code, offset, offset + syllable->length);
            offset += syllable->length;
        }
        cursor = previous_end = token->end;
    }
    for (Py_ssize_t k = cursor; k < n; k++)
        PUSH(codes[k], k, k + 1);
#undef PUSH
    PyObject *view = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out, size);
    if (view != NULL) {
        result = PyTuple_Pack(4, view, starts, ends, latin);
        Py_DECREF(view);
    }
done:
    PyMem_Free(out);
    Py_XDECREF(starts);
    Py_XDECREF(ends);
    Py_XDECREF(latin);
    return result;
}

static PyObject *
scan_phonetic_view(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!nargs_are(nargs, 7, "phonetic_view(text, table, trie, max_token, gap, first_code, "
                             "last_code)"))
        return NULL;
    PyObject *text = args[0], *gap = args[4];
    if (!PyUnicode_Check(text) || !PyUnicode_Check(gap)) {
        PyErr_SetString(PyExc_TypeError, "phonetic_view: the text and gap must be str");
        return NULL;
    }
    const Py_ssize_t max_token = PyLong_AsSsize_t(args[3]);
    if (max_token == -1 && PyErr_Occurred())
        return NULL;
    const long first_code = PyLong_AsLong(args[5]);
    if (first_code == -1 && PyErr_Occurred())
        return NULL;
    const long last_code = PyLong_AsLong(args[6]);
    if (last_code == -1 && PyErr_Occurred())
        return NULL;
    if (max_token < 1 || max_token > MAX_TOKEN_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "phonetic_view: max_token out of range");
        return NULL;
    }
    Py_buffer table_view, trie_view;
    if (PyObject_GetBuffer(args[1], &table_view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[2], &trie_view, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&table_view);
        return NULL;
    }
    PyObject *result = NULL;
    Py_UCS4 *chars = NULL, *codes = NULL;
    Token *tokens = NULL;
    Syllable *syllables = NULL;
    if (table_view.len % 4 != 0 || trie_view.len % (4 * TRIE_WIDTH) != 0 || trie_view.len == 0) {
        PyErr_SetString(PyExc_ValueError, "phonetic_view: malformed table or trie");
        goto done;
    }
    const uint32_t *table = (const uint32_t *)table_view.buf;
    const Py_UCS4 size = (Py_UCS4)(table_view.len / 4);
    const int32_t *trie = (const int32_t *)trie_view.buf;
    const Py_ssize_t rows = trie_view.len / (4 * TRIE_WIDTH);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    chars = PyMem_New(Py_UCS4, n > 0 ? n : 1);
    codes = PyMem_New(Py_UCS4, n > 0 ? n : 1);
    if (chars == NULL || codes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* The syllable codes, character by character (as translate: None off the table). */
    Py_UCS4 widest = 0;
    int letters = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_UCS4 c = PyUnicode_READ(kind, data, i);
        chars[i] = c;
        codes[i] = through_table(table, size, c);
        if (codes[i] == UNMAPPED) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        if (codes[i] > widest)
            widest = codes[i];
        letters |= is_lower(c);
    }
    Py_ssize_t count = 0, used = 0;
    if (letters) {
        /* Every run of letters that is pinyin, then those that can take part in a key. */
        tokens = PyMem_New(Token, n / 2 + 1);
        syllables = PyMem_New(Syllable, n + 1);
        if (tokens == NULL || syllables == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < n;) {
            if (!is_lower(chars[i])) {
                i++;
                continue;
            }
            Py_ssize_t j = i;
            while (j < n && is_lower(chars[j]))
                j++;
            if (j - i <= max_token) {
                Py_ssize_t parts = segment(chars + i, j - i, trie, rows, syllables + used);
                if (parts > 0) {
                    tokens[count] = (Token){i, j, used, parts};
                    count++;
                    used += parts;
                }
            }
            i = j;
        }
        Py_ssize_t kept = 0;
        for (Py_ssize_t i = 0; i < count; i++) {
            const Token t = tokens[i];
#define IS_CODE(c) ((c) >= (Py_UCS4)first_code && (c) <= (Py_UCS4)last_code)
            const int joins =
                t.count > 1 || (t.start > 0 && IS_CODE(codes[t.start - 1])) ||
                (t.end < n && IS_CODE(codes[t.end])) ||
                (i > 0 && only_gap(chars, tokens[i - 1].end, t.start, gap)) ||
                (i + 1 < count && only_gap(chars, t.end, tokens[i + 1].start, gap));
            if (joins)
                tokens[kept++] = t; /* kept <= i: the earlier tokens were read already */
#undef IS_CODE
        }
        count = kept;
    }
    if (count == 0) {
        result = PyUnicode_New(n, widest);
        if (result != NULL) {
            const int out_kind = PyUnicode_KIND(result);
            void *out_data = PyUnicode_DATA(result);
            for (Py_ssize_t i = 0; i < n; i++)
                PyUnicode_WRITE(out_kind, out_data, i, codes[i]);
        }
    }
    else {
        result = view_result(chars, codes, n, tokens, count, syllables, gap);
    }
done:
    PyMem_Free(chars);
    PyMem_Free(codes);
    PyMem_Free(tokens);
    PyMem_Free(syllables);
    PyBuffer_Release(&table_view);
    PyBuffer_Release(&trie_view);
    return result;
}

/* ---- hashed_ngrams: the scorer's features ------------------------------------------------ */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define PINYIN_SEED (FNV_OFFSET ^ 0x9e3779b97f4a7c15ULL)
#define CHAR_GRAMS 3
#define SYLLABLE_GRAMS 2

static inline uint64_t
mix(uint64_t h, uint64_t x)
{
    return (h ^ x) * FNV_PRIME;
}

/* MurmurHash3's 64-bit finalizer: every input bit reaches the low bits kept as the bucket. */
static inline uint64_t
finish(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* The distinct buckets of one text: an open-addressing set (slot 0: empty, else bucket + 1)
 * beside the buckets in first-seen order. */
typedef struct {
    uint32_t *slots;
    uint32_t mask;
    uint32_t *order;
    Py_ssize_t count;
} Buckets;

/* Adds the bucket of ``hash``; returns it when it is new, else -1. */
static inline int64_t
buckets_add(Buckets *set, uint64_t hash, uint32_t bucket_mask)
{
    const uint32_t bucket = (uint32_t)(finish(hash) & bucket_mask);
    uint32_t i = (bucket * 2654435761u) & set->mask;
    for (;;) {
        const uint32_t slot = set->slots[i];
        if (slot == 0) {
            set->slots[i] = bucket + 1;
            set->order[set->count++] = bucket;
            return bucket;
        }
        if (slot == bucket + 1)
            return -1;
        i = (i + 1) & set->mask;
    }
}

/* The strongest n-grams met so far: weight, then first position, decide (ties: earlier). */
#define MAX_TOP 64
typedef struct {
    float weight;
    Py_ssize_t start, end;
} Strong;

static void
keep_strong(Strong *top, Py_ssize_t *kept, Py_ssize_t want, float weight, Py_ssize_t start,
            Py_ssize_t end)
{
    if (!(weight > 0.0f))
        return;
    Py_ssize_t at = *kept;
    if (at == want) {
        if (!(weight > top[want - 1].weight))
            return;
        at = want - 1;
    }
    else {
        (*kept)++;
    }
    while (at > 0 && weight > top[at - 1].weight) {
        top[at] = top[at - 1];
        at--;
    }
    top[at].weight = weight;
    top[at].start = start;
    top[at].end = end;
}

static PyObject *
scan_hashed_ngrams(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!nargs_are(nargs, 7,
                   "hashed_ngrams(text, syllables, syllable_hashes, first_code, bits, weights, "
                   "top)"))
        return NULL;
    PyObject *text = args[0], *syllables = args[1], *weights = args[5];
    if (!PyUnicode_Check(text) || !PyUnicode_Check(syllables)) {
        PyErr_SetString(PyExc_TypeError, "hashed_ngrams: text and syllables must be str");
        return NULL;
    }
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (PyUnicode_GET_LENGTH(syllables) != n) {
        PyErr_SetString(PyExc_ValueError,
                        "hashed_ngrams: syllables must be as long as text (one code each)");
        return NULL;
    }
    const long first_code = PyLong_AsLong(args[3]);
    const long bits = PyLong_AsLong(args[4]);
    const Py_ssize_t want = PyLong_AsSsize_t(args[6]);
    if (PyErr_Occurred())
        return NULL;
    if (want < 0 || want > MAX_TOP || (want > 0 && weights == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "hashed_ngrams: top must be 0..64, and needs weights");
        return NULL;
    }
    Strong top[MAX_TOP];
    Py_ssize_t kept = 0;
    if (bits < 1 || bits > 30) {
        PyErr_SetString(PyExc_ValueError, "hashed_ngrams: bits must be 1..30");
        return NULL;
    }
    Py_buffer hashes_view, weights_view = {0};
    if (PyObject_GetBuffer(args[2], &hashes_view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL;
    Buckets set = {0};
    if (hashes_view.len % 8 != 0) {
        PyErr_SetString(PyExc_ValueError,
                        "hashed_ngrams: syllable_hashes must hold 8-byte hashes");
        goto done;
    }
    const uint32_t bucket_mask = (uint32_t)((1UL << bits) - 1);
    if (weights != Py_None) {
        if (PyObject_GetBuffer(weights, &weights_view, PyBUF_SIMPLE) < 0)
            goto done;
        if (weights_view.len != (Py_ssize_t)sizeof(float) << bits) {
            PyErr_Format(PyExc_ValueError,
                         "hashed_ngrams: weights must hold 2**bits 4-byte floats (%zd bytes)",
                         (Py_ssize_t)sizeof(float) << bits);
            goto done;
        }
    }
    const uint64_t *syllable_hash = (const uint64_t *)hashes_view.buf;
    const Py_ssize_t syllable_count = hashes_view.len / 8;
    const Py_ssize_t most = (CHAR_GRAMS + SYLLABLE_GRAMS) * n;
    uint32_t capacity = 16;
    while ((Py_ssize_t)capacity < 2 * most)
        capacity <<= 1;
    set.mask = capacity - 1;
    set.slots = PyMem_Calloc(capacity, sizeof(uint32_t));
    set.order = PyMem_Malloc((size_t)(most > 0 ? most : 1) * sizeof(uint32_t));
    if (set.slots == NULL || set.order == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const int kind = PyUnicode_KIND(text), syllable_kind = PyUnicode_KIND(syllables);
    const void *data = PyUnicode_DATA(text), *syllable_data = PyUnicode_DATA(syllables);
    const float *w = (const float *)weights_view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t h = FNV_OFFSET;
        for (Py_ssize_t k = 0; k < CHAR_GRAMS && i + k < n; k++) {
            h = mix(h, PyUnicode_READ(kind, data, i + k));
            const int64_t added = buckets_add(&set, h, bucket_mask);
            if (want && added >= 0)
                keep_strong(top, &kept, want, w[added], i, i + k + 1);
        }
        h = PINYIN_SEED;
        for (Py_ssize_t k = 0; k < SYLLABLE_GRAMS && i + k < n; k++) {
            const long code = (long)PyUnicode_READ(syllable_kind, syllable_data, i + k);
            if (code < first_code || code - first_code >= syllable_count)
                break;
            h = mix(h, syllable_hash[code - first_code]);
            const int64_t added = buckets_add(&set, h, bucket_mask);
            if (want && added >= 0)
                keep_strong(top, &kept, want, w[added], i, i + k + 1);
        }
    }
    if (want) {
        result = PyList_New(kept);
        for (Py_ssize_t i = 0; result != NULL && i < kept; i++) {
            PyObject *item = Py_BuildValue("(dnn)", (double)top[i].weight, top[i].start,
                                           top[i].end);
            if (item == NULL)
                Py_CLEAR(result);
            else
                PyList_SET_ITEM(result, i, item);
        }
    }
    else if (weights == Py_None) {
        result = PyList_New(set.count);
        for (Py_ssize_t i = 0; result != NULL && i < set.count; i++) {
            PyObject *bucket = PyLong_FromUnsignedLong(set.order[i]);
            if (bucket == NULL)
                Py_CLEAR(result);
            else
                PyList_SET_ITEM(result, i, bucket);
        }
    }
    else {
        double sum = 0.0;
        for (Py_ssize_t i = 0; i < set.count; i++)
            sum += (double)w[set.order[i]];
        result = Py_BuildValue("(dn)", sum, set.count);
    }
done:
    PyMem_Free(set.slots);
    PyMem_Free(set.order);
    PyBuffer_Release(&hashes_view);
    if (weights_view.obj != NULL)
        PyBuffer_Release(&weights_view);
    return result;
}

static PyMethodDef scan_methods[] = {
    {"translate", (PyCFunction)(void (*)(void))scan_translate, METH_FASTCALL,
     "translate(text, table) -> str | None: text.translate(table) over a table of code points "
     "indexed by code point; None past the table or on IRREGULAR (U+FFFF)."},
    {"context_steps", (PyCFunction)(void (*)(void))scan_context_steps, METH_FASTCALL,
     "context_steps(folded, digit_words, units) -> int: a bit per context step that would "
     "change the text (1 separators, 2 repeats, 4 leetspeak, 8 digits)."},
    {"apply_context_steps", (PyCFunction)(void (*)(void))scan_apply_context_steps, METH_FASTCALL,
     "apply_context_steps(text, starts, ends, digit_words, units, variants, order) -> None | "
     "(text, starts, ends, marks, steps): every context step in order, with the spans "
     "carried."},
    {"phonetic_view", (PyCFunction)(void (*)(void))scan_phonetic_view, METH_FASTCALL,
     "phonetic_view(text, table, trie, max_token, gap, first_code, last_code) -> None | str | "
     "(codes, starts, ends, latin): the syllable codes of the text, with the Latin words that "
     "spell pinyin and can take part in a key rewritten (then with their spans); None when a "
     "character lies off the table."},
    {"char_classes", (PyCFunction)scan_char_classes, METH_O,
     "char_classes(text) -> int: a bit per kind of character in the text (LATIN a-z, DIGIT "
     "0-9, AT, DOT, COLON, NUMERAL 一幺壹, NUMERALS five Chinese numerals in a row)."},
    {"hashed_ngrams", (PyCFunction)(void (*)(void))scan_hashed_ngrams, METH_FASTCALL,
     "hashed_ngrams(text, syllables, syllable_hashes, first_code, bits, weights, top) -> "
     "list[int] | (float, int) | list[(float, int, int)]: the scorer's distinct hashed n-gram "
     "buckets (weights None), the sum of their weights and their count (top 0), or the top "
     "strongest as (weight, start, end)."},
    {NULL, NULL, 0, NULL},
};

static int
scan_exec(PyObject *module)
{
    if (PyModule_AddIntConstant(module, "LATIN", CLASS_LATIN) < 0 ||
        PyModule_AddIntConstant(module, "DIGIT", CLASS_DIGIT) < 0 ||
        PyModule_AddIntConstant(module, "AT", CLASS_AT) < 0 ||
        PyModule_AddIntConstant(module, "DOT", CLASS_DOT) < 0 ||
        PyModule_AddIntConstant(module, "COLON", CLASS_COLON) < 0 ||
        PyModule_AddIntConstant(module, "NUMERAL", CLASS_NUMERAL) < 0 ||
        PyModule_AddIntConstant(module, "NUMERALS", CLASS_NUMERALS) < 0 ||
        PyModule_AddIntConstant(module, "STEP_SEPARATORS", STEP_SEPARATORS) < 0 ||
        PyModule_AddIntConstant(module, "STEP_REPEATS", STEP_REPEATS) < 0 ||
        PyModule_AddIntConstant(module, "STEP_LEETSPEAK", STEP_LEETSPEAK) < 0 ||
        PyModule_AddIntConstant(module, "STEP_DIGITS", STEP_DIGITS) < 0)
        return -1;
    return 0;
}

static struct PyModuleDef_Slot scan_slots[] = {
    {Py_mod_exec, scan_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef scan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "moderation._scan",
    .m_doc = "The per-character loops of the prefilter's hot path (see moderation.normalize).",
    .m_size = 0,
    .m_methods = scan_methods,
    .m_slots = scan_slots,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    return PyModuleDef_Init(&scan_module);
}
