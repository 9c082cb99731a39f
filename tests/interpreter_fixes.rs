//! The RustPython fixes we carry (vendor/CHANGES.md), each shown on the
//! Python that failed: the code runs under `ferrocorn run` and must give
//! what CPython gives.

mod common;

use std::process::{Command, Stdio};

use common::{BIN, scratch_dir};

/// Runs `code` with `ferrocorn run -c`; its stdout, or a panic with stderr.
fn python(code: &str) -> String {
    let output = Command::new(BIN)
        .args(["run", "-c", code])
        .current_dir(scratch_dir("interpreter-fixes"))
        .stdin(Stdio::null())
        .output()
        .expect("ferrocorn run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_mro_is_c3_over_the_bases_and_their_order_as_cpython_computes_it() {
    // SQLAlchemy 2.1's sql/roles.py: ColumnsClauseRole lists AllowsLambdaRole
    // before UsesInspection, which TStringElementRole's own MRO has first;
    // FromClauseRole then combines it with JoinTargetRole.
    let out = python(
        r#"
class SQLRole: pass
class UsesInspection: pass
class AllowsLambdaRole: pass
class ColumnListRole(SQLRole): pass
class StructuralRole(SQLRole): pass
class TStringElementRole(UsesInspection, SQLRole): pass
class ColumnsClauseRole(TStringElementRole, AllowsLambdaRole, UsesInspection, ColumnListRole): pass
class JoinTargetRole(AllowsLambdaRole, UsesInspection, StructuralRole): pass
class FromClauseRole(ColumnsClauseRole, JoinTargetRole): pass
print(" ".join(c.__name__ for c in FromClauseRole.__mro__))
class A: pass
class B(A): pass
try:
    class C(A, B): pass
except TypeError as error:
    print(" ".join(str(error).split()))
"#,
    );
    assert_eq!(
        out,
        "FromClauseRole ColumnsClauseRole TStringElementRole JoinTargetRole AllowsLambdaRole \
         UsesInspection ColumnListRole StructuralRole SQLRole object\n\
         Cannot create a consistent method resolution order (MRO) for bases A, B\n"
    );
}

#[test]
fn slots_may_name_dict_beside_a_dict_property_and_private_names_conflict_mangled() {
    // celery/local.py's Proxy: `__dict__` in __slots__ and a `__dict__`
    // property in the class body, as CPython allows.
    let out = python(
        r#"
class Proxy:
    __slots__ = ('__local', '__dict__', '__weakref__')
    def __init__(self, value):
        object.__setattr__(self, '_Proxy__local', value)
    @property
    def __dict__(self):
        return {'proxied': object.__getattribute__(self, '_Proxy__local')}
p = Proxy(5)
print(p.__dict__, p._Proxy__local, type(Proxy.__dict__['_Proxy__local']).__name__)
for body in ('x = 1', '__x = 1'):
    try:
        exec('class Conflict:\n    __slots__ = ("x", "__x")\n    ' + body)
        print('no conflict')
    except ValueError as error:
        print(error)
"#,
    );
    assert_eq!(
        out,
        "{'proxied': 5} 5 member_descriptor\n\
         'x' in __slots__ conflicts with class variable\n\
         '_Conflict__x' in __slots__ conflicts with class variable\n"
    );
}

#[test]
fn a_hash_slot_beside_eq_is_a_slot_and_eq_alone_still_clears_the_hash() {
    // voluptuous's Schema: `__hash__` in __slots__, set per instance, and
    // an __eq__; CPython decides `__hash__ = None` after the slots.
    let out = python(
        r#"
class Schema:
    __slots__ = ('schema', '__hash__')
    def __init__(self, schema):
        self.schema = schema
        self.__hash__ = lambda: 42
    def __eq__(self, other):
        return self.schema == other.schema
print(hash(Schema(1)), Schema(1) == Schema(1), type(Schema.__dict__['__hash__']).__name__)
class Plain:
    def __eq__(self, other):
        return True
print(Plain.__hash__)
"#,
    );
    assert_eq!(out, "42 True member_descriptor\nNone\n");
}

#[test]
fn sqlite_detect_types_converts_declared_and_named_types_and_leaves_expressions() {
    // Django's SQLite backend connects with both flags; its first queries
    // select expressions and PRAGMAs, which have no declared type.
    let out = python(
        r#"
import sqlite3, datetime
db = sqlite3.connect(":memory:", detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES)
sqlite3.register_converter("point", lambda b: tuple(map(int, b.split(b","))))
db.execute("CREATE TABLE t (p point, n integer, s text)")
db.execute("INSERT INTO t VALUES ('1,2', 3, 'x'), (NULL, NULL, NULL)")
print(db.execute("SELECT count(*), 1 + 1 FROM t").fetchone())
print(db.execute("SELECT p, n, s FROM t ORDER BY rowid").fetchall())
print(db.execute('SELECT s AS "s [point]" FROM t WHERE s IS NULL').fetchone())
print(db.execute("SELECT '4,5' AS \"q [point]\"").fetchone())
print(db.execute("PRAGMA table_info(t)").fetchone())
"#,
    );
    assert_eq!(
        out,
        "(2, 2)\n\
         [((1, 2), 3, 'x'), (None, None, None)]\n\
         (None,)\n\
         ((4, 5),)\n\
         (0, 'p', 'point', 0, None, 0)\n"
    );
}

#[test]
fn sys_version_starts_with_a_version_platform_can_split_in_three() {
    // prometheus_client unpacks platform.python_version_tuple() in three at
    // import; "3.14.0.alpha" gave four parts.
    let out = python(
        r#"
import platform, re, sys
print(len(platform.python_version_tuple()), platform.python_implementation())
print(bool(re.match(r"3\.14\.\d+((a|b|rc)\d+)? ", sys.version)))
"#,
    );
    assert_eq!(out, "3 RustPython\nTrue\n");
}

#[test]
fn sys_version_names_the_rustpython_release_not_the_repository_it_was_built_in() {
    // The build once asked git, so each of our commits (and a dirty tree)
    // was a new sys.version and rebuilt the interpreter crate.
    let out = python(
        r#"
import platform, sys
print(sys.version.splitlines()[0])
print(platform.python_build()[0])
"#,
    );
    assert_eq!(out, "3.14.0a0 (tags/v0.6.0:b2626c5)\ntags/v0.6.0:b2626c5\n");
}

#[test]
fn a_comment_after_a_keyword_argument_is_not_read_as_a_for_clause() {
    // docutils 0.23's __init__.py: `release=True  # True for official
    // releases` before the call's closing parenthesis.
    let out = python(
        r#"
info = dict(
    serial=0,  # pre-release number (0 for final releases)
    release=True  # True for official releases and pre-releases
    )
print(info)
try:
    compile("f(a=x for x in y)", "s", "exec")
except SyntaxError as error:
    print(error.msg)
"#,
    );
    assert_eq!(
        out,
        "{'serial': 0, 'release': True}\n\
         invalid syntax. Maybe you meant '==' or ':=' instead of '='?\n"
    );
}

#[test]
fn a_nested_class_with_a_conditional_annotation_compiles() {
    // SQLAlchemy 2.1's orm/relationships.py: RelationshipProperty.Comparator
    // annotates attributes under an `if`.
    let out = python(
        r#"
class Outer:
    class Inner:
        if True:
            x: int = 1
        else:
            y: str
print(Outer.Inner.x, Outer.Inner.__annotations__)
"#,
    );
    assert_eq!(out, "1 {'x': <class 'int'>}\n");
}

#[test]
fn a_lambda_value_before_a_generator_key_in_a_dict_display_compiles() {
    // zope.interface's test_collections.py: lambdas as values beside a
    // `type(i for i in ...)` key in one dict display.
    let out = python(
        r#"
table = {memoryview: lambda: "view", type(i for i in range(1)): lambda: "gen"}
print(sorted(f() for f in table.values()))
"#,
    );
    assert_eq!(out, "['gen', 'view']\n");
}

#[test]
fn ctypes_takes_a_cfunctype_callback_where_argtypes_name_its_type() {
    // psycopg's pure-Python libpq binding passes a CFUNCTYPE notice
    // receiver to a function whose argtypes name that type; here libc's
    // qsort calls back into Python through such an argument.
    let out = python(
        r#"
import ctypes
libc = ctypes.CDLL("libc.so.6")
COMPARE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
libc.qsort.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, COMPARE]
libc.qsort.restype = None
values = (ctypes.c_int * 5)(5, 1, 4, 2, 3)
calls = []
def compare(a, b):
    calls.append(1)
    return a[0] - b[0]
libc.qsort(values, len(values), ctypes.sizeof(ctypes.c_int), COMPARE(compare))
print(list(values), len(calls) > 0)
"#,
    );
    assert_eq!(out, "[1, 2, 3, 4, 5] True\n");
}

#[test]
fn a_ctypes_argument_that_does_not_convert_raises_argument_error_naming_it() {
    let out = python(
        r#"
import ctypes
libc = ctypes.CDLL("libc.so.6")
libc.abs.argtypes = [ctypes.c_int]
COMPARE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
libc.qsort.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, COMPARE]
for call in (lambda: libc.abs("x"), lambda: libc.qsort(None, 0, 4, "not a function")):
    try:
        call()
    except ctypes.ArgumentError as error:
        print(error)
"#,
    );
    assert_eq!(
        out,
        "argument 1: TypeError: wrong type\n\
         argument 4: TypeError: expected CFunctionType instance instead of str\n"
    );
}

#[test]
fn pwd_finds_no_entry_rather_than_failing_where_there_is_no_passwd_file() {
    // An empty root (a FROM scratch image) has no /etc/passwd: CPython's
    // pwd raises KeyError, which os.path.expanduser (and so zoneinfo's
    // import, through sysconfig) relies on; RustPython raised OSError.
    let root = scratch_dir("pwd-empty-root");
    std::fs::copy(BIN, root.join("ferrocorn")).unwrap();
    let output = Command::new("/usr/sbin/chroot")
        .env_clear()
        .arg(&root)
        .args(["/ferrocorn", "run", "-c"])
        .arg(
            "import os, pwd\n\
             try:\n    pwd.getpwuid(os.getuid())\nexcept KeyError as error:\n    print('KeyError', error)\n\
             print(os.path.expanduser('~x') == '~x')",
        )
        .stdin(Stdio::null())
        .output()
        .expect("chroot");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "KeyError 'getpwuid(): uid not found: 0'\nTrue\n"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
