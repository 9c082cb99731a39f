//! Native modules: Rust functions a Python app can import, so the embedding
//! program decides exactly which capabilities its Python code gets.

use std::fmt;
use std::sync::Arc;

use rustpython_vm::builtins::{
    PyBaseExceptionRef, PyBytes, PyDict, PyFloat, PyInt, PyList, PyStr, PyTuple,
};
use rustpython_vm::function::FuncArgs;
use rustpython_vm::{AsObject, PyObjectRef, PyResult, VirtualMachine};

/// A Python value crossing into or out of a native function.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int` within 64 bits.
    Int(i64),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `list` (a `tuple` argument arrives as a list too).
    List(Vec<Value>),
    /// `dict` with `str` keys, in insertion order.
    Dict(Vec<(String, Value)>),
}

impl Value {
    /// The text, if this is a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// The number, if this is an `int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Str(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Str(text)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// The Python exception a native function raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeErrorKind {
    /// `ValueError`.
    Value,
    /// `TypeError`.
    Type,
    /// `KeyError`.
    Key,
    /// `PermissionError`: the host refuses the operation.
    Permission,
    /// `RuntimeError`.
    Runtime,
}

/// An error a native function returns; the Python caller gets it as an exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeError {
    /// Which exception.
    pub kind: NativeErrorKind,
    /// Its message.
    pub message: String,
}

impl NativeError {
    /// A `ValueError`.
    pub fn value(message: impl Into<String>) -> NativeError {
        NativeError {
            kind: NativeErrorKind::Value,
            message: message.into(),
        }
    }

    /// A `TypeError`.
    pub fn type_error(message: impl Into<String>) -> NativeError {
        NativeError {
            kind: NativeErrorKind::Type,
            message: message.into(),
        }
    }

    /// A `KeyError`.
    pub fn key(message: impl Into<String>) -> NativeError {
        NativeError {
            kind: NativeErrorKind::Key,
            message: message.into(),
        }
    }

    /// A `PermissionError`.
    pub fn permission(message: impl Into<String>) -> NativeError {
        NativeError {
            kind: NativeErrorKind::Permission,
            message: message.into(),
        }
    }

    /// A `RuntimeError`.
    pub fn runtime(message: impl Into<String>) -> NativeError {
        NativeError {
            kind: NativeErrorKind::Runtime,
            message: message.into(),
        }
    }
}

impl fmt::Display for NativeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for NativeError {}

type NativeFn = dyn Fn(&[Value]) -> Result<Value, NativeError> + Send + Sync;

/// A module of Rust functions and constants the Python app can `import`.
///
/// Every interpreter gets its own module object; the functions are shared
/// and may be called from several interpreter threads at once.
///
/// ```
/// use ferrocorn::embed::{NativeError, NativeModule, Value};
/// let host = NativeModule::new("host")
///     .constant("version", Value::from("1.0"))
///     .function("greet", |args| match args {
///         [Value::Str(name)] => Ok(Value::Str(format!("hello, {name}"))),
///         _ => Err(NativeError::type_error("greet(name: str)")),
///     });
/// assert_eq!(host.name(), "host");
/// ```
#[derive(Clone)]
pub struct NativeModule {
    name: String,
    functions: Vec<(String, Arc<NativeFn>)>,
    constants: Vec<(String, Value)>,
}

impl fmt::Debug for NativeModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeModule")
            .field("name", &self.name)
            .field(
                "functions",
                &self.functions.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("constants", &self.constants)
            .finish()
    }
}

impl NativeModule {
    /// An empty module importable as `name`.
    pub fn new(name: &str) -> NativeModule {
        NativeModule {
            name: name.to_owned(),
            functions: Vec::new(),
            constants: Vec::new(),
        }
    }

    /// The import name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a function taking positional arguments (keyword arguments are
    /// refused with `TypeError`).
    pub fn function(
        mut self,
        name: &str,
        function: impl Fn(&[Value]) -> Result<Value, NativeError> + Send + Sync + 'static,
    ) -> NativeModule {
        self.functions.push((name.to_owned(), Arc::new(function)));
        self
    }

    /// Adds a constant attribute.
    pub fn constant(mut self, name: &str, value: Value) -> NativeModule {
        self.constants.push((name.to_owned(), value));
        self
    }
}

/// Creates each module in this interpreter and puts it in `sys.modules`.
pub(crate) fn install(vm: &VirtualMachine, modules: &[NativeModule]) -> PyResult<()> {
    let sys_modules = vm.sys_module.get_attr("modules", vm)?;
    for module in modules {
        let dict = vm.ctx.new_dict();
        for (name, value) in &module.constants {
            dict.set_item(name.as_str(), to_python(vm, value), vm)?;
        }
        for (name, function) in &module.functions {
            let function = function.clone();
            // Interned names live as long as the interpreter, as the function does.
            let static_name = vm.ctx.intern_str(name.as_str()).as_str();
            let qualified = format!("{}.{name}", module.name);
            let callable =
                vm.new_function(static_name, move |args: FuncArgs, vm: &VirtualMachine| {
                    if !args.kwargs.is_empty() {
                        return Err(
                            vm.new_type_error(format!("{qualified}() takes no keyword arguments"))
                        );
                    }
                    let values = args
                        .args
                        .iter()
                        .map(|arg| from_python(vm, arg))
                        .collect::<PyResult<Vec<_>>>()?;
                    match vm.allow_threads(|| function(&values)) {
                        Ok(value) => Ok(to_python(vm, &value)),
                        Err(error) => Err(to_exception(vm, &error)),
                    }
                });
            dict.set_item(name.as_str(), callable.into(), vm)?;
        }
        let object = vm.new_module(&module.name, dict, None);
        sys_modules.set_item(module.name.as_str(), object.into(), vm)?;
    }
    Ok(())
}

fn to_exception(vm: &VirtualMachine, error: &NativeError) -> PyBaseExceptionRef {
    let message = error.message.clone();
    match error.kind {
        NativeErrorKind::Value => vm.new_value_error(message),
        NativeErrorKind::Type => vm.new_type_error(message),
        NativeErrorKind::Key => vm.new_key_error(vm.ctx.new_str(message).into()),
        NativeErrorKind::Permission => vm.new_exception_msg(
            vm.ctx.exceptions.permission_error.to_owned(),
            message.into(),
        ),
        NativeErrorKind::Runtime => vm.new_runtime_error(message),
    }
}

fn to_python(vm: &VirtualMachine, value: &Value) -> PyObjectRef {
    match value {
        Value::None => vm.ctx.none(),
        Value::Bool(b) => vm.ctx.new_bool(*b).into(),
        Value::Int(n) => vm.ctx.new_int(*n).into(),
        Value::Float(x) => vm.ctx.new_float(*x).into(),
        Value::Str(text) => vm.ctx.new_str(text.as_str()).into(),
        Value::Bytes(bytes) => vm.ctx.new_bytes(bytes.clone()).into(),
        Value::List(items) => vm
            .ctx
            .new_list(items.iter().map(|v| to_python(vm, v)).collect())
            .into(),
        Value::Dict(entries) => {
            let dict = vm.ctx.new_dict();
            for (key, value) in entries {
                // A fresh dict with str keys: setting an item cannot fail.
                let _ = dict.set_item(key.as_str(), to_python(vm, value), vm);
            }
            dict.into()
        }
    }
}

fn from_python(vm: &VirtualMachine, object: &PyObjectRef) -> PyResult<Value> {
    if vm.is_none(object) {
        return Ok(Value::None);
    }
    if object.class().is(vm.ctx.types.bool_type) {
        return Ok(Value::Bool(object.clone().try_to_bool(vm)?));
    }
    if let Some(int) = object.downcast_ref::<PyInt>() {
        return int.try_to_primitive::<i64>(vm).map(Value::Int);
    }
    if let Some(float) = object.downcast_ref::<PyFloat>() {
        return Ok(Value::Float(float.to_f64()));
    }
    if let Some(text) = object.downcast_ref::<PyStr>() {
        return text
            .to_str()
            .map(|s| Value::Str(s.to_owned()))
            .ok_or_else(|| vm.new_value_error("str argument is not valid UTF-8"));
    }
    if let Some(bytes) = object.downcast_ref::<PyBytes>() {
        return Ok(Value::Bytes(bytes.as_bytes().to_vec()));
    }
    if let Some(list) = object.downcast_ref::<PyList>() {
        let items = list.borrow_vec().to_vec();
        return items
            .iter()
            .map(|item| from_python(vm, item))
            .collect::<PyResult<_>>()
            .map(Value::List);
    }
    if let Some(tuple) = object.downcast_ref::<PyTuple>() {
        return tuple
            .as_slice()
            .iter()
            .map(|item| from_python(vm, item))
            .collect::<PyResult<_>>()
            .map(Value::List);
    }
    if let Some(dict) = object.downcast_ref::<PyDict>() {
        let mut entries = Vec::new();
        for (key, value) in dict {
            let key = key
                .downcast_ref::<PyStr>()
                .and_then(|k| k.to_str().map(str::to_owned))
                .ok_or_else(|| {
                    vm.new_type_error("dict keys passed to a native function must be str")
                })?;
            entries.push((key, from_python(vm, &value)?));
        }
        return Ok(Value::Dict(entries));
    }
    Err(vm.new_type_error(format!(
        "a native function cannot take a {} argument (None, bool, int, float, str, bytes, list, tuple or dict)",
        object.class().name()
    )))
}
