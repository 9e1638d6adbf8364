/*
 * moderation._scan: the per-character loops of the prefilter's hot path, in C.
 *
 * Two functions, each the exact equivalent of Python code in moderation.normalize that stays
 * the reference (tests hold the two equal on random and real text):
 *
 *   translate(text, table)  ->  str | None
 *       text.translate(table) for a table of code points indexed by code point (an
 *       array('I')); None when a character lies past the table or maps to IRREGULAR
 *       (U+FFFF: it folds to zero or several characters), for the caller's slow path.
 *
 *   context_steps(folded, digit_words, units)  ->  int
 *       A bit per context step that would change ``folded`` (1 separators, 2 repeats,
 *       4 leetspeak, 8 digits): the conditions of Normalizer's finders, without their
 *       regular expressions.
 *
 * Pure functions of their arguments; they hold no state and release nothing they did not take.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define IRREGULAR 0xFFFFu

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

static PyObject *
scan_translate(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "translate(text, table) takes 2 arguments");
        return NULL;
    }
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
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= size) {
            PyBuffer_Release(&view);
            Py_RETURN_NONE;
        }
        Py_UCS4 out = table[c];
        if (out == IRREGULAR || out > 0x10FFFF) {
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

#define STEP_SEPARATORS 1
#define STEP_REPEATS 2
#define STEP_LEETSPEAK 4
#define STEP_DIGITS 8

/* Normalizer._separators acts: a whole run of separators with the right neighbours. */
static int
separators_act(int kind, const void *data, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        if (!is_separator(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t j = i;
        while (j < n && is_separator(PyUnicode_READ(kind, data, j)))
            j++;
        if (i > 0 && j < n) {
            Py_UCS4 left = PyUnicode_READ(kind, data, i - 1);
            Py_UCS4 right = PyUnicode_READ(kind, data, j);
            if (is_han(left) && (is_han(right) || is_lower_or_digit(right)))
                return 1;
            if (is_lower_or_digit(left) && is_han(right))
                return 1;
            if (is_lower(left) && is_lower(right) &&
                !(i >= 2 && is_lower_or_digit(PyUnicode_READ(kind, data, i - 2))) &&
                !(j + 1 < n && is_lower_or_digit(PyUnicode_READ(kind, data, j + 1))))
                return 1;
        }
        i = j;
    }
    return 0;
}

/* Normalizer._repeats acts: three of one repeatable character in a row. */
static int
repeats_act(int kind, const void *data, Py_ssize_t n)
{
    for (Py_ssize_t i = 2; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == PyUnicode_READ(kind, data, i - 1) && c == PyUnicode_READ(kind, data, i - 2) &&
            (is_han(c) || is_lower(c)))
            return 1;
    }
    return 0;
}

static inline int
is_leet(Py_UCS4 c)
{
    switch (c) {
    case '0':
    case '1':
    case '3':
    case '4':
    case '5':
    case '7':
    case '@':
    case '$':
        return 1;
    default:
        return 0;
    }
}

/* Normalizer._leetspeak acts: a leet character between two Latin letters. */
static int
leetspeak_act(int kind, const void *data, Py_ssize_t n)
{
    for (Py_ssize_t i = 1; i + 1 < n; i++) {
        if (is_leet(PyUnicode_READ(kind, data, i)) && is_lower(PyUnicode_READ(kind, data, i - 1)) &&
            is_lower(PyUnicode_READ(kind, data, i + 1)))
            return 1;
    }
    return 0;
}

static inline int
in_units(Py_UCS4 c, int units_kind, const void *units_data, Py_ssize_t units_n)
{
    for (Py_ssize_t k = 0; k < units_n; k++) {
        if (PyUnicode_READ(units_kind, units_data, k) == c)
            return 1;
    }
    return 0;
}

/* Normalizer._digit_words acts: a known digit run touching a Chinese character, with no
 * letter, digit or unit on the wrong side. -1 on error. */
static int
digits_act(PyObject *text, int kind, const void *data, Py_ssize_t n, PyObject *words,
           PyObject *units)
{
    const int units_kind = PyUnicode_KIND(units);
    const void *units_data = PyUnicode_DATA(units);
    const Py_ssize_t units_n = PyUnicode_GET_LENGTH(units);
    Py_ssize_t i = 0;
    while (i < n) {
        if (!is_digit(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t j = i;
        while (j < n && is_digit(PyUnicode_READ(kind, data, j)))
            j++;
        const int has_left = i > 0, has_right = j < n;
        const Py_UCS4 left = has_left ? PyUnicode_READ(kind, data, i - 1) : 0;
        const Py_UCS4 right = has_right ? PyUnicode_READ(kind, data, j) : 0;
        /* right not in _NOT_AFTER_DIGITS (letters, digits, units, % and .); "" is not in it */
        const int right_free = !has_right || !(is_lower_or_digit(right) || right == '%' ||
                                               right == '.' ||
                                               in_units(right, units_kind, units_data, units_n));
        const int after_han = has_left && is_han(left) && right_free;
        /* left not in _NOT_BEFORE_DIGITS (letters, digits and .) */
        const int left_free = !has_left || !(is_lower_or_digit(left) || left == '.');
        const int before_han = left_free && has_right && is_han(right) &&
                               !in_units(right, units_kind, units_data, units_n);
        if (after_han || before_han) {
            PyObject *run = PyUnicode_Substring(text, i, j);
            if (run == NULL)
                return -1;
            int known = PySequence_Contains(words, run);
            Py_DECREF(run);
            if (known != 0)
                return known; /* 1, or -1 on error */
        }
        i = j;
    }
    return 0;
}

static PyObject *
scan_context_steps(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "context_steps(folded, digit_words, units) takes 3 arguments");
        return NULL;
    }
    PyObject *text = args[0], *words = args[1], *units = args[2];
    if (!PyUnicode_Check(text) || !PyUnicode_Check(units)) {
        PyErr_SetString(PyExc_TypeError, "context_steps: folded and units must be str");
        return NULL;
    }
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    long steps = 0;
    if (separators_act(kind, data, n))
        steps |= STEP_SEPARATORS;
    if (repeats_act(kind, data, n))
        steps |= STEP_REPEATS;
    if (leetspeak_act(kind, data, n))
        steps |= STEP_LEETSPEAK;
    int digits = digits_act(text, kind, data, n, words, units);
    if (digits < 0)
        return NULL;
    if (digits)
        steps |= STEP_DIGITS;
    return PyLong_FromLong(steps);
}

static PyMethodDef scan_methods[] = {
    {"translate", (PyCFunction)(void (*)(void))scan_translate, METH_FASTCALL,
     "translate(text, table) -> str | None: text.translate(table) over a table of code points "
     "indexed by code point; None past the table or on IRREGULAR (U+FFFF)."},
    {"context_steps", (PyCFunction)(void (*)(void))scan_context_steps, METH_FASTCALL,
     "context_steps(folded, digit_words, units) -> int: a bit per context step that would "
     "change the text (1 separators, 2 repeats, 4 leetspeak, 8 digits)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef_Slot scan_slots[] = {
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
