// The print button of the printable finance pages (vouchers, deposit receipt).
document.getElementById("print-button").addEventListener("click", function () { window.print(); });
