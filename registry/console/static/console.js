// Adapter Registry console: the only script. Forms marked data-confirm ask before they post
// (their required checkbox is the confirmation when scripts are off).
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
